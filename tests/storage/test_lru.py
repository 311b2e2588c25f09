"""``LruCache``: the least recently used values leave first once their summed size passes the limit."""

from __future__ import annotations

from taskvec.storage.lru import LruCache


def test_the_least_recently_used_leave_first_by_count():
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now "b" is the oldest
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_sizes_are_summed_and_a_replaced_value_counts_once():
    cache: LruCache[str, str] = LruCache(5, size=len)
    cache.put("a", "xx")
    cache.put("a", "xxx")  # replaces: 3 held, not 5
    cache.put("b", "xx")
    assert len(cache) == 2
    cache.put("c", "x")  # 6 > 5: "a" leaves
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, "xx", "x")


def test_the_newest_value_stays_even_when_alone_it_is_over_the_limit():
    cache: LruCache[str, str] = LruCache(2, size=len)
    cache.put("a", "x")
    cache.put("big", "xxxx")
    assert len(cache) == 1 and cache.get("big") == "xxxx"
