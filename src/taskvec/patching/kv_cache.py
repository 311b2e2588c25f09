"""Forks of a transformers KV cache: continuing a cached prefix without changing it.

A prefix runs once into a ``Cache``; several continuations (one per patched layer, per query, per
patch) then run from it. A dynamic cache layer replaces its tensors on update rather than writing
into them, so a shallow copy of the cache and its layers is enough to keep the prefix intact.
"""

from __future__ import annotations

import copy

import torch
from transformers.cache_utils import Cache, DynamicLayer, DynamicSlidingWindowLayer

from taskvec.models.adapter import Encoded, ModelAdapter
from taskvec.models.cache_keyword import cache_of
from taskvec.models.head import unread_head

#: the cache layers a fork can continue: they replace their tensors on update, batch first
FORKABLE_LAYERS = (DynamicLayer, DynamicSlidingWindowLayer)


def unforkable_reason(cache, num_layers: int, rows: int) -> str | None:
    """Why ``cache`` (a prefix of ``rows`` rows through ``num_layers`` decoder layers) cannot be
    forked and continued row by row, or None if it can."""
    if not isinstance(cache, Cache) or len(cache.layers) < num_layers:
        return f"prefix cache of type {type(cache).__name__} is not a per-layer cache"
    for layer in cache.layers[:num_layers]:
        if type(layer) not in FORKABLE_LAYERS:
            return f"unknown cache layer {type(layer).__name__}"
        if not layer.is_initialized or layer.keys.shape[0] != rows:
            return "a cache layer holds no prefix"
    return None


def run_prefix(adapter: ModelAdapter, encoded: Encoded) -> Cache:
    """The KV cache of every prompt's tokens but its last (``adapter.prefix``), the head unread."""
    with unread_head(adapter.unembedding()):
        output = adapter.model(
            **adapter.full_inputs(adapter.prefix(encoded)), use_cache=True, logits_to_keep=1
        )
    return cache_of(output)


def fork_cache(cache: Cache) -> Cache:
    """A cache whose updates do not reach ``cache`` (dynamic layers replace, never write, tensors)."""
    forked = copy.copy(cache)
    forked.layers = [copy.copy(layer) for layer in cache.layers]
    return forked


def cache_rows(cache: Cache, index: torch.Tensor) -> Cache:
    """A fork of ``cache`` whose batch row ``i`` is row ``index[i]`` of ``cache`` (rows may repeat)."""
    forked = fork_cache(cache)
    rows = forked.layers[0].keys.shape[0] if forked.layers else 0
    if len(index) == rows and torch.equal(index, torch.arange(rows, device=index.device)):
        return forked  # every row in order: nothing to copy
    for layer in forked.layers:
        here = index.to(layer.keys.device)  # a model spread over devices caches each layer on its own
        layer.keys, layer.values = layer.keys[here], layer.values[here]
    return forked


def keep_rows(cache: Cache, index: torch.Tensor) -> None:
    """``cache`` cut, in place, to its batch rows ``index``: for a cache its holder alone goes on
    with (``greedy_continue``'s, once some answers ended), so the rows let go are freed at once;
    a fork (``cache_rows``) kept the whole cache alive beside it while the batch lasted, up to
    twice what the planners count. Layer objects are rebound, never written into: a cache forked
    from another leaves that one intact."""
    for layer in cache.layers:
        here = index.to(layer.keys.device)  # a model spread over devices caches each layer on its own
        layer.keys, layer.values = layer.keys[here], layer.values[here]


__all__ = ["FORKABLE_LAYERS", "cache_rows", "fork_cache", "keep_rows", "run_prefix", "unforkable_reason"]
