"""A store of the most recently used values, bounded by their total size: decoded pictures by
file (bounded in bytes), a VLM's image encodings by picture (bounded in count)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """Values by key; past ``limit`` (summed ``size`` of the values, 1 each by default) the least
    recently used leave first, always keeping the newest."""

    def __init__(self, limit: int, size: Callable[[V], int] = lambda _value: 1) -> None:
        self.limit, self._size = limit, size
        self._values: OrderedDict[K, V] = OrderedDict()
        self._total = 0

    def get(self, key: K) -> V | None:
        """The value (now the most recently used), or None."""
        value = self._values.get(key)
        if value is not None:
            self._values.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        if key in self._values:
            self._total -= self._size(self._values.pop(key))
        self._values[key] = value
        self._total += self._size(value)
        while self._total > self.limit and len(self._values) > 1:
            _, dropped = self._values.popitem(last=False)
            self._total -= self._size(dropped)

    def clear(self) -> None:
        self._values.clear()
        self._total = 0

    def __len__(self) -> int:
        return len(self._values)


__all__ = ["LruCache"]
