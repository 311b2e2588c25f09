"""The layer sweep: xPatch at every layer for many queries, at the cost it truly needs.

The patched position is the query's last token, and a row patched at layer ``l`` is identical to
the clean row up to layer ``l``. So ``sweep`` does, per batch of queries:

A. the prefix (all tokens but the last) once, into a KV cache;
B. the clean last token through every layer (the No Context answer); it also tells the engine how
   the model calls each decoder layer;
C. the patched rows, one block of rows per patched layer, ordered by layer: a row patched at ``l``
   runs only layers ``l+1 ..``, attending to the cached prefix. At decoder layer ``k`` the active
   rows are exactly the first ``rows_below(k)`` rows, so each layer runs one batched step over all
   queries and all lower patched layers.

Pass C is the model's own forward on the rows (so embeddings, masks, positions and the final norm
and head are the model's), with hooks that shrink each layer's call to its active rows and feed it
a cache holding only that layer's prefix keys and values, tiled for those rows. That is about
``L^2 / 2`` single-token layer steps per query, against ``L (L + 1)`` for re-running every layer
for every row and ``L`` full forwards for the paper's procedure. Memory grows with the batch: the
prefix cache once per query, plus one layer's tiled keys and values at a time.

Nothing here depends on the model family: the engine learns which dimension of each layer
argument is the batch by comparing pass B (``n`` rows) with pass C (``R`` rows). Where it cannot
(an unknown cache type, an ambiguous argument, a model whose prefix sees the last token), ``sweep``
runs the plain path: a full forward per layer. A batch of one-token queries (nothing before the
last token to cache) runs it too, and only that batch. ``sweep_naive`` is the paper's procedure and the
reference the tests compare against.
"""

from __future__ import annotations

import bisect
import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers.cache_utils import Cache

from taskvec.errors import VectorMismatchError
from taskvec.models.adapter import Encoded, ModelAdapter, model_call
from taskvec.models.batching import MemoryBudget, OnProgress, plan_sweep_batches, token_counts
from taskvec.models.cache_keyword import cache_argument
from taskvec.models.head import greedy_head
from taskvec.patching.hooks import PatchMode, check_mode, hidden_of, hooked
from taskvec.patching.kv_cache import fork_cache, run_prefix, unforkable_reason
from taskvec.patching.patch import Patch, check_finite, first_token_ids
from taskvec.prompts.template import Prompt


@dataclass
class SweepResult:
    """Greedy first tokens: ``patched[q, i]`` with layer ``layers[i]`` patched, ``clean[q]`` without."""

    layers: list[int]
    patched: torch.Tensor  # [queries, layers] token ids
    clean: torch.Tensor  # [queries] token ids


def _check(adapter: ModelAdapter, vectors: torch.Tensor, layers: Sequence[int]) -> None:
    for layer in layers:
        adapter.check_layer(layer)
    if not isinstance(vectors, torch.Tensor):  # e.g. a TaskVector, whose layers need not be these
        raise VectorMismatchError(
            f"the sweep takes a tensor of one vector per layer swept, [{len(layers)}, hidden], not a "
            f"{type(vectors).__name__}; for a task vector: torch.stack([vector.at(l) for l in layers])"
        )
    if vectors.ndim != 2 or vectors.shape[0] != len(layers):
        raise VectorMismatchError(
            f"the sweep takes one vector per layer, [{len(layers)}, hidden], got {tuple(vectors.shape)}"
        )
    if layers:
        Patch(layers[0], vectors[0]).check(adapter)
        check_finite(vectors, "the swept vectors")


class FastPathUnavailable(Exception):
    """The layer-skipping sweep cannot be applied exactly to this model; use the plain path."""


@model_call
@torch.no_grad()
def sweep(
    adapter: ModelAdapter,
    queries: Sequence[Prompt],
    vectors: torch.Tensor,
    layers: Sequence[int],
    budget: MemoryBudget | None = None,
    mode: PatchMode = "replace",
    scale: float = 1.0,
    on_progress: OnProgress | None = None,
) -> SweepResult:
    """Patch ``vectors[i]`` at layer ``layers[i]`` into every query; one row per (query, layer).

    ``vectors: [len(layers), hidden]``. Batches of queries are chosen within ``budget``; each runs
    passes A, B and C (module docstring). Falls back to the plain path, with a warning, where the
    fast path does not apply. ``on_progress(done, total)`` is told the (query, layer) rows done
    after each batch.
    """
    layers = list(layers)
    _check(adapter, vectors, layers)
    check_mode(mode, scale)
    budget = budget or MemoryBudget.for_model(adapter)
    if not layers:
        return _sweep_plain(adapter, queries, vectors, layers, budget, mode, scale, on_progress)
    if not adapter.prefix_cache_is_exact:  # the family says so (PaliGemma's prefix attention)
        warnings.warn(
            f"{adapter.name}: layer sweep runs in full (the family's cached prefix is not what a "
            "full forward computes, so no prefix is reused): one forward pass per layer",
            stacklevel=1,  # this line: the caller's frame is a wrapper's (model_call, no_grad)
        )
        return _sweep_plain(adapter, queries, vectors, layers, budget, mode, scale, on_progress)
    patched = torch.empty(len(queries), len(layers), dtype=torch.long, device="cpu")
    clean = torch.empty(len(queries), dtype=torch.long, device="cpu")
    lengths = token_counts(adapter, queries)
    done = 0  # queries
    try:
        for indices in plan_sweep_batches(adapter, lengths, len(layers), budget):
            batch = [queries[i] for i in indices]
            if max(lengths[i] for i in indices) < 2:  # no prefix to cache: these few in full
                plain = _sweep_plain(adapter, batch, vectors, layers, budget, mode, scale)
                batch_patched, batch_clean = plain.patched, plain.clean
            else:
                encoded = adapter.encode(batch)
                with greedy_head(adapter.unembedding()) as head:
                    batch_patched, batch_clean = _sweep_passes(
                        adapter, encoded, vectors, layers, mode, scale, lambda _output: head.last()[:, -1]
                    )
            patched[indices], clean[indices] = batch_patched.cpu(), batch_clean.cpu()
            done += len(indices)
            if on_progress is not None:
                on_progress(done * len(layers), len(queries) * len(layers))
    except FastPathUnavailable as reason:
        warnings.warn(f"{adapter.name}: layer sweep runs in full ({reason})", stacklevel=1)
        return _sweep_plain(adapter, queries, vectors, layers, budget, mode, scale, on_progress)
    return SweepResult(layers, patched, clean)


def _sweep_plain(
    adapter: ModelAdapter,
    queries: Sequence[Prompt],
    vectors: torch.Tensor,
    layers: list[int],
    budget: MemoryBudget,
    mode: PatchMode,
    scale: float,
    on_progress: OnProgress | None = None,
) -> SweepResult:
    """The exact plain path: a full forward of every query for each layer, batched in the budget."""
    return sweep_naive(
        adapter,
        queries,
        vectors,
        layers,
        budget,
        batch_one=False,
        mode=mode,
        scale=scale,
        on_progress=on_progress,
    )


@model_call
@torch.no_grad()
def sweep_logits(
    adapter: ModelAdapter,
    encoded: Encoded,
    vectors: torch.Tensor,
    layers: Sequence[int],
    mode: PatchMode = "replace",
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token logits of one batch of queries: patched ``[n, len(layers), vocab]``, clean ``[n, vocab]``
    (on the CPU).

    Raises ``FastPathUnavailable`` where the fast path cannot be exact (the caller runs the plain
    path instead). Checks its input as ``sweep`` does: a layer out of range ran no decoder layer
    and gave numbers of nothing."""
    layers = list(layers)
    _check(adapter, vectors, layers)
    check_mode(mode, scale)
    patched, clean = _sweep_passes(
        adapter, encoded, vectors, layers, mode, scale, lambda output: output.logits[:, -1, :]
    )
    return patched.cpu(), clean.cpu()


def _sweep_passes(
    adapter: ModelAdapter,
    encoded: Encoded,
    vectors: torch.Tensor,
    layers: Sequence[int],
    mode: PatchMode,
    scale: float,
    read: Callable[[Any], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Passes A, B and C on one batch; ``read(output)`` takes what the caller wants from the
    model's output of passes B (``[n, ...]``) and C (``[rows, ...]``); returns them reordered to
    patched ``[n, len(layers), ...]`` and clean ``[n, ...]``."""
    layers = list(layers)
    n = encoded.batch_size
    if encoded.seq_len < 2:
        raise FastPathUnavailable("a query of one token has no prefix to cache")
    prefix_cache = run_prefix(adapter, encoded)  # A: n rows, prefix only; never handed to a forward
    _check_cache(prefix_cache, adapter.num_layers, n)

    # B: the clean last token; record each layer's call (shapes) and output at the last position
    calls: list[Any] = [None] * adapter.num_layers
    clean_out: list[torch.Tensor | None] = [None] * adapter.num_layers  # each [n, hidden]

    def record_call(index: int):
        def pre_hook(_module, args, kwargs):
            calls[index] = _shapes((args, kwargs))

        return pre_hook

    def record_output(index: int):
        def hook(_module, _args, output):
            clean_out[index] = hidden_of(output)[:, -1, :].detach().clone()

        return hook

    with hooked(adapter.layers, record_output, record_call):
        clean = read(
            adapter.model(
                **adapter.last_token_inputs(encoded),
                **cache_argument(fork_cache(prefix_cache)),
                use_cache=True,
                logits_to_keep=1,
            )
        )
    if any(call is None for call in calls):
        raise FastPathUnavailable("not every decoder layer ran in the last-token step")

    # C: one block of n rows per patched layer, blocks sorted by layer (row b * n + q)
    order = sorted(range(len(layers)), key=lambda i: (layers[i], i))
    block_layers = [layers[i] for i in order]
    block_vectors = vectors[order]  # [blocks, hidden]
    blocks = len(order)
    stepper = _RowStepper(prefix_cache, calls, clean_out, block_layers, block_vectors, n, mode, scale)
    with hooked(adapter.layers, stepper.hook_for, stepper.pre_hook_for):
        rows = read(
            adapter.model(
                **adapter.last_token_inputs(_block_rows(adapter, encoded, blocks)),
                **cache_argument(fork_cache(prefix_cache)),
                use_cache=True,
                logits_to_keep=1,
            )
        )  # [rows, ...], row b * n + q
    if stepper.layers_run != adapter.num_layers:
        raise FastPathUnavailable("not every decoder layer ran in the patched step")
    patched = rows.new_empty(n, len(layers), *rows.shape[1:])
    patched[:, order] = rows.view(blocks, n, *rows.shape[1:]).transpose(0, 1)
    return patched, clean


# --- pass C: each decoder layer runs only the rows patched below it ---------------------------------


class _RowStepper:
    """Hooks for pass C. Rows are ``blocks x n``, block ``b`` patched at ``block_layers[b]``.

    At layer ``k`` the first ``active = n * #(block_layers < k)`` rows run the layer; then the rows
    patched at ``k`` enter with the patched value; the rest pass through untouched."""

    def __init__(
        self,
        prefix_cache: Cache,
        calls: list[Any],
        clean_out: list[torch.Tensor | None],
        block_layers: list[int],
        block_vectors: torch.Tensor,
        n: int,
        mode: PatchMode,
        scale: float,
    ):
        self.prefix_cache = prefix_cache
        self.calls = calls
        self.clean_out = clean_out
        self.block_layers = block_layers
        self.block_vectors = block_vectors  # [blocks, hidden]
        self.n = n
        self.rows = n * len(block_layers)
        self.mode, self.scale = mode, scale
        self.layers_run = 0
        self._full_input: torch.Tensor | None = None  # [rows, 1, hidden] the current layer was given
        self._active = 0  # rows the current layer really runs

    def pre_hook_for(self, index: int):
        def pre_hook(_module, args, kwargs):
            active = self.n * bisect.bisect_left(self.block_layers, index)
            # no active row: run one row (results dropped) rather than skip, hooks cannot skip a call
            count = active or (1 if self.rows > self.n else self.rows)
            self._active = active
            self._full_input = _hidden_argument(args, kwargs)
            row_cache = _row_cache(self.prefix_cache, index, count, self.n)
            return _take_rows((args, kwargs), self.calls[index], self.n, self.rows, count, row_cache)

        return pre_hook

    def hook_for(self, index: int):
        def hook(_module, _args, output):
            self.layers_run += 1
            full = self._full_input
            ran = hidden_of(output)  # [count, 1, hidden]
            first = bisect.bisect_left(self.block_layers, index)
            last = bisect.bisect_right(self.block_layers, index)
            parts = [ran] if self._active else []
            if last > first:  # blocks patched at this layer enter here
                parts.append(self._entering(index, first, last, ran))
            parts.append(full[self.n * last :])
            combined = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]  # [rows, 1, hidden]
            self._full_input = None
            return (combined, *output[1:]) if isinstance(output, tuple) else combined

        return hook

    def _entering(self, index: int, first: int, last: int, like: torch.Tensor) -> torch.Tensor:
        """``[(last - first) * n, 1, hidden]``: the layer-``index`` output of the rows patched there."""
        values = self.block_vectors[first:last].to(like.device, like.dtype)[:, None, :]  # [blocks, 1, hidden]
        if self.mode == "replace":
            out = values.expand(-1, self.n, -1)
        else:
            clean = self.clean_out[index].to(like.device, like.dtype)[None, :, :]  # [1, n, hidden]
            out = clean + self.scale * values
        return out.reshape(-1, 1, values.shape[-1])


def _hidden_argument(args: tuple, kwargs: dict) -> torch.Tensor:
    if args:
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    raise FastPathUnavailable("cannot find the hidden states a decoder layer is called with")


def _block_rows(adapter: ModelAdapter, encoded: Encoded, blocks: int) -> Encoded:
    """The batch ``blocks`` times, block-major (row ``b * n + q`` is query ``q``)."""
    return adapter.rows(encoded, torch.arange(encoded.batch_size, device=encoded.device).repeat(blocks))


# --- caches -----------------------------------------------------------------------------------------


def _check_cache(cache, num_layers: int, n: int) -> None:
    """The fast path re-reads each layer's prefix keys/values; it knows the dynamic cache layers only."""
    if reason := unforkable_reason(cache, num_layers, n):
        raise FastPathUnavailable(reason)


def _row_cache(prefix_cache: Cache, index: int, count: int, n: int) -> Cache:
    """A cache for one layer's call on ``count`` rows: layer ``index`` holds the prefix keys/values
    tiled block-major (``count`` is a multiple of ``n``, or 1 for a dropped row)."""
    source = prefix_cache.layers[index]
    layer = copy.copy(source)
    if count % n == 0:
        times = count // n
        layer.keys = source.keys.repeat(times, 1, 1, 1) if times > 1 else source.keys
        layer.values = source.values.repeat(times, 1, 1, 1) if times > 1 else source.values
    else:
        layer.keys, layer.values = source.keys[:count], source.values[:count]
    cache = copy.copy(prefix_cache)
    cache.layers = list(prefix_cache.layers)
    cache.layers[index] = layer
    return cache


# --- layer arguments: find the batch dimension, take the first rows ---------------------------------


class _CacheSlot:
    """Stands for the cache argument in a recorded call."""


def _shapes(tree):
    """A layer call with tensors replaced by their shapes and caches by a marker."""
    if isinstance(tree, Cache):
        return _CacheSlot
    if isinstance(tree, torch.Tensor):
        return tuple(tree.shape)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_shapes(v) for v in tree)
    if isinstance(tree, dict):
        return {k: _shapes(v) for k, v in tree.items()}
    return None


def _take_rows(tree, reference, n: int, rows: int, count: int, cache: Cache):
    """``tree`` (a pass-C call on ``rows`` rows) cut to its first ``count`` rows, the cache swapped.

    ``reference`` is the same layer's call in pass B (``n`` rows): the one dimension whose size
    went from ``n`` to ``rows`` is the batch; arguments whose shape did not change are shared."""
    if isinstance(tree, Cache):
        return cache
    if isinstance(tree, torch.Tensor):
        if not isinstance(reference, tuple) or len(reference) != tree.ndim:
            raise FastPathUnavailable("a layer argument changed rank between calls")
        changed = [d for d in range(tree.ndim) if tree.shape[d] != reference[d]]
        if not changed or count == rows:
            return tree
        if len(changed) != 1 or reference[changed[0]] != n or tree.shape[changed[0]] != rows:
            raise FastPathUnavailable(f"cannot tell the batch dimension of a {tuple(tree.shape)} argument")
        return tree.narrow(changed[0], 0, count)
    if isinstance(tree, (tuple, list)):
        if not isinstance(reference, (tuple, list)) or len(reference) != len(tree):
            raise FastPathUnavailable("a layer's arguments changed between calls")
        return type(tree)(
            _take_rows(v, r, n, rows, count, cache) for v, r in zip(tree, reference, strict=True)
        )
    if isinstance(tree, dict):
        if not isinstance(reference, dict) or reference.keys() != tree.keys():
            raise FastPathUnavailable("a layer's keyword arguments changed between calls")
        return {k: _take_rows(v, reference[k], n, rows, count, cache) for k, v in tree.items()}
    return tree


@model_call
@torch.no_grad()
def sweep_naive(
    adapter: ModelAdapter,
    queries: Sequence[Prompt],
    vectors: torch.Tensor,
    layers: Sequence[int],
    budget: MemoryBudget | None = None,
    batch_one: bool = True,
    mode: PatchMode = "replace",
    scale: float = 1.0,
    on_progress: OnProgress | None = None,
) -> SweepResult:
    """The paper's procedure: a full forward of each query for each patched layer (no cache).
    ``on_progress(done, total)`` is told the (query, layer) rows done as they are."""
    layers = list(layers)
    _check(adapter, vectors, layers)
    check_mode(mode, scale)
    patched = torch.empty(len(queries), len(layers), dtype=torch.long, device="cpu")
    groups = [[q] for q in queries] if batch_one else [list(queries)]
    for j, layer in enumerate(layers):
        column = []
        for group in groups:
            column.extend(first_token_ids(adapter, group, Patch(layer, vectors[j], mode, scale), budget))
            if on_progress is not None:
                on_progress(j * len(queries) + len(column), len(queries) * len(layers))
        patched[:, j] = torch.tensor(column, device="cpu")
    clean = []
    for group in groups:
        clean.extend(first_token_ids(adapter, group, None, budget))
    return SweepResult(layers, patched, torch.tensor(clean, dtype=torch.long, device="cpu"))
