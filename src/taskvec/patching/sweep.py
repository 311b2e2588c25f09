"""The layer sweep: xPatch at every layer for many queries, at the cost it truly needs.

The patched position is the query's last token, so the prefix before it is identical for every
layer variant. ``sweep`` runs each prefix once (KV cache), then runs only the last token, once per
patched layer, all variants of a batch of queries in one batched step. ``sweep_naive`` is the
paper's procedure (one full forward per query and layer) and is kept as the reference the tests
compare against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from taskvec.models.adapter import ModelAdapter
from taskvec.models.batching import MemoryBudget, plan_batches, token_counts
from taskvec.patching.hooks import PatchMode, patching_last_token
from taskvec.patching.patch import Patch, first_token_ids
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
    if vectors.ndim != 2 or vectors.shape[0] != len(layers):
        raise ValueError(f"expected vectors [{len(layers)}, hidden], got {tuple(vectors.shape)}")
    if layers:
        Patch(layers[0], vectors[0]).check(adapter)


@torch.no_grad()
def sweep(
    adapter: ModelAdapter,
    queries: Sequence[Prompt],
    vectors: torch.Tensor,
    layers: Sequence[int],
    budget: MemoryBudget | None = None,
    mode: PatchMode = "replace",
    scale: float = 1.0,
) -> SweepResult:
    """Patch ``vectors[i]`` at layer ``layers[i]`` into every query; one row per (query, layer).

    ``vectors: [len(layers), hidden]``. Each batch: one prefix pass, then one last-token pass
    over ``batch x (layers + 1)`` rows (the extra row per query is the clean No Context run).
    """
    layers = list(layers)
    _check(adapter, vectors, layers)
    if not adapter.prefix_cache_is_exact:
        return sweep_naive(adapter, queries, vectors, layers, budget, mode=mode, scale=scale)
    budget = budget or MemoryBudget()
    variants = len(layers) + 1  # the last variant of each query runs clean
    patched = torch.empty(len(queries), len(layers), dtype=torch.long)
    clean = torch.empty(len(queries), dtype=torch.long)
    lengths = token_counts(adapter, queries)
    for indices in plan_batches(lengths, budget.max_tokens(adapter), rows_per_prompt=variants):
        encoded = adapter.encode([queries[i] for i in indices])
        n = len(indices)
        prefix_out = adapter.model(
            **adapter.full_inputs(adapter.prefix(encoded)), use_cache=True, logits_to_keep=1
        )
        cache = prefix_out.past_key_values
        cache.batch_repeat_interleave(variants)
        repeated = adapter.repeat(encoded, variants)
        query_rows = torch.arange(n) * variants
        patches = {layer: (query_rows + j, vectors[j].expand(n, -1)) for j, layer in enumerate(layers)}
        with patching_last_token(adapter.layers, patches, mode, scale):
            out = adapter.model(
                **adapter.last_token_inputs(repeated),
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        tokens = out.logits[:, -1, :].argmax(-1).view(n, variants)
        patched[indices] = tokens[:, :-1]
        clean[indices] = tokens[:, -1]
    return SweepResult(layers, patched, clean)


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
) -> SweepResult:
    """The paper's procedure: a full forward of each query for each patched layer (no cache)."""
    layers = list(layers)
    _check(adapter, vectors, layers)
    patched = torch.empty(len(queries), len(layers), dtype=torch.long)
    groups = [[q] for q in queries] if batch_one else [list(queries)]
    for j, layer in enumerate(layers):
        column = []
        for group in groups:
            column.extend(first_token_ids(adapter, group, Patch(layer, vectors[j], mode, scale), budget))
        patched[:, j] = torch.tensor(column)
    clean = []
    for group in groups:
        clean.extend(first_token_ids(adapter, group, None, budget))
    return SweepResult(layers, patched, torch.tensor(clean))
