"""Run prompts, clean or with a task vector patched into their last token, and read the answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from taskvec.errors import VectorMismatchError
from taskvec.models.adapter import ModelAdapter
from taskvec.models.batching import MemoryBudget, plan_batches, token_counts
from taskvec.models.head import greedy_head
from taskvec.patching.hooks import PatchMode, patching_last_token
from taskvec.prompts.template import Prompt


@dataclass(frozen=True)
class Patch:
    """Put ``vector`` into the output of decoder layer ``layer`` at the query's last token."""

    layer: int
    vector: torch.Tensor  # [hidden]
    mode: PatchMode = "replace"
    scale: float = 1.0

    def check(self, adapter: ModelAdapter) -> None:
        adapter.check_layer(self.layer)
        if self.vector.ndim != 1 or self.vector.shape[0] != adapter.hidden_size:
            raise VectorMismatchError(
                f"vector of shape {tuple(self.vector.shape)} cannot be patched into {adapter.name}, "
                f"whose residual stream is {adapter.hidden_size} wide"
            )


@torch.no_grad()
def generate_ids(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    patch: Patch | None = None,
    max_new_tokens: int = 1,
    budget: MemoryBudget | None = None,
) -> list[list[int]]:
    """Greedy generation; the patch acts on the prompt's last token only (the paper's xPatch).
    Tokens are read with ``greedy_head`` (the exact argmax, without the float32 logits)."""
    if patch is not None:
        patch.check(adapter)
    budget = budget or MemoryBudget()
    lengths = token_counts(adapter, prompts)
    results: list[list[int]] = [[] for _ in prompts]
    for indices in plan_batches(lengths, budget.max_tokens(adapter) // max(1, max_new_tokens)):
        encoded = adapter.encode([prompts[i] for i in indices])
        rows = torch.arange(len(indices))
        patches = {}
        if patch is not None:
            patches = {patch.layer: (rows, patch.vector.expand(len(indices), -1))}
        with greedy_head(adapter.unembedding()) as head:
            with patching_last_token(
                adapter.layers,
                patches,
                patch.mode if patch else "replace",
                patch.scale if patch else 1.0,
            ):
                output = adapter.forward(encoded, use_cache=max_new_tokens > 1)
            next_ids = head.last()[:, -1:]  # [batch, 1]
            generated = [next_ids]
            cache = output.past_key_values
            for _ in range(max_new_tokens - 1):
                encoded = adapter.grow(encoded, next_ids)
                step = adapter.last_token_inputs(encoded)
                output = adapter.model(**step, past_key_values=cache, use_cache=True, logits_to_keep=1)
                cache = output.past_key_values
                next_ids = head.last()[:, -1:]
                generated.append(next_ids)
        tokens = torch.cat(generated, dim=1)
        for row, index in enumerate(indices):
            results[index] = tokens[row].tolist()
    return results


def first_token_ids(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    patch: Patch | None = None,
    budget: MemoryBudget | None = None,
) -> list[int]:
    """The greedy first answer token of each prompt."""
    return [ids[0] for ids in generate_ids(adapter, prompts, patch, 1, budget)]


def generate(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    patch: Patch | None = None,
    max_new_tokens: int = 1,
    stop_at_newline: bool = True,
    budget: MemoryBudget | None = None,
) -> list[str]:
    """Greedy answers as text (cut at the first newline: answers are one line)."""
    texts = []
    for ids in generate_ids(adapter, prompts, patch, max_new_tokens, budget):
        text = adapter.decode(ids)
        if stop_at_newline and max_new_tokens > 1:
            stripped = text.lstrip("\n ")
            text = text[: len(text) - len(stripped)] + stripped.split("\n", 1)[0]
        texts.append(text)
    return texts


def patch(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    vector: torch.Tensor,
    layer: int,
    mode: PatchMode = "replace",
    scale: float = 1.0,
    max_new_tokens: int = 1,
) -> list[str]:
    """Patch ``vector`` into the last token of each prompt at ``layer`` and generate."""
    return generate(adapter, prompts, Patch(layer, vector, mode, scale), max_new_tokens)
