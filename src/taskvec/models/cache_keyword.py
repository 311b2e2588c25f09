"""The one place that knows what transformers calls the KV cache. 5.24 renamed the forward's
``past_key_values`` keyword and the output's field to ``cache``; the old names still work there
with a FutureWarning, and go in 5.40 (where a cache passed by the old name would be dropped
without a word, and every cached step would recompute from nothing)."""

from __future__ import annotations

import transformers
from packaging.version import Version

#: the keyword this transformers' forward takes the KV cache by
CACHE_KEYWORD = "cache" if Version(transformers.__version__).release >= (5, 24) else "past_key_values"


def cache_argument(cache) -> dict:
    """``{keyword: cache}`` for a model's forward, under this transformers' name for it."""
    return {CACHE_KEYWORD: cache}


def cache_of(output):
    """The KV cache a model's forward returned (``use_cache=True``)."""
    return output.cache if CACHE_KEYWORD == "cache" else output.past_key_values


__all__ = ["CACHE_KEYWORD", "cache_argument", "cache_of"]
