"""Batch planning within a memory budget, so memory grows with the batch, not with the data."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from taskvec.errors import MemoryBudgetError
from taskvec.models.adapter import ModelAdapter
from taskvec.prompts.template import Prompt


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes the working set of one forward pass may take (cache + activations)."""

    bytes: int = 1 << 30  # 1 GiB

    @classmethod
    def from_mb(cls, megabytes: float) -> MemoryBudget:
        return cls(int(megabytes * (1 << 20)))

    def token_bytes(self, adapter: ModelAdapter) -> int:
        """Upper bound on what one token costs: K and V per layer plus a few activation copies."""
        per_layer = 2 * adapter.hidden_size * 4  # K and V (<= hidden wide), float32
        activations = 24 * adapter.hidden_size * 4  # residual, attention and MLP intermediates
        return adapter.num_layers * per_layer + activations

    def max_tokens(self, adapter: ModelAdapter) -> int:
        return max(1, self.bytes // self.token_bytes(adapter))


def token_counts(adapter: ModelAdapter, prompts: Sequence[Prompt]) -> list[int]:
    """Length of each prompt in tokens (images counted as their placeholder tokens)."""
    return [int(adapter.encode([p]).attention_mask.sum()) for p in prompts]


def plan_batches(
    lengths: Sequence[int], max_tokens: int, rows_per_prompt: int = 1, max_rows: int = 512
) -> Iterator[list[int]]:
    """Group prompt indices (sorted by length, so little padding) into batches whose padded size
    times ``rows_per_prompt`` fits in ``max_tokens``. Raises if one prompt alone does not fit."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batch: list[int] = []
    for index in order:
        cost_alone = lengths[index] * rows_per_prompt
        if cost_alone > max_tokens:
            raise MemoryBudgetError(
                f"one prompt of {lengths[index]} tokens x {rows_per_prompt} rows needs more than the "
                f"memory budget allows ({max_tokens} tokens); raise --memory-budget-mb"
            )
        longest = max([lengths[i] for i in batch] + [lengths[index]])
        fits = longest * (len(batch) + 1) * rows_per_prompt <= max_tokens
        if batch and (not fits or (len(batch) + 1) * rows_per_prompt > max_rows):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch
