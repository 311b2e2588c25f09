"""Batch planning within a memory budget, so memory grows with the batch, not with the data."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
from PIL import Image

from taskvec.config import BatchedOptions
from taskvec.errors import ConfigError, MemoryBudgetError, ResultWarning
from taskvec.models.adapter import ModelAdapter, OnProgress
from taskvec.prompts.template import Prompt

#: the share of a GPU's free memory a budget sized to it takes: the costs below are upper bounds
#: already; the rest leaves room for the allocator's fragmentation and for what they do not count
GPU_SHARE = 0.7

Batched = TypeVar("Batched", bound=BatchedOptions)


def progress_from(on_progress: OnProgress | None, before: int, total: int) -> OnProgress | None:
    """``on_progress`` for one part of a larger computation: the part's ``(done, _)`` is told as
    ``(before + done, total)`` of the whole."""
    if on_progress is None:
        return None
    return lambda done, _part_total: on_progress(before + done, total)


@dataclass(frozen=True)
class MemoryBudget:
    """Bytes the working set of one forward pass may take (cache + activations)."""

    bytes: int = 1 << 30  # 1 GiB

    @classmethod
    def from_mb(cls, megabytes: float) -> MemoryBudget:
        return cls(int(megabytes * (1 << 20)))

    @property
    def megabytes(self) -> float:
        return round(self.bytes / (1 << 20), 1)

    @classmethod
    def for_model(cls, adapter: ModelAdapter) -> MemoryBudget:
        """The budget where none is given, sized to where the model's decoder layers compute,
        now: 1 GiB on a CPU; on GPUs, ``GPU_SHARE`` of their free memory, so a 7B model on a
        large GPU batches many prompts instead of a few (``sized_to_devices``)."""
        return cls.sized_to_devices([_layer_device(layer, adapter.device) for layer in adapter.layers])

    @classmethod
    def sized_to_devices(
        cls, layer_devices: Sequence[torch.device], free_bytes: Callable[[torch.device], int] | None = None
    ) -> MemoryBudget:
        """The budget of a model whose decoder layers compute on ``layer_devices`` (one each): 1
        GiB where none is a GPU; else ``GPU_SHARE`` of the room of the tightest GPU, the cache
        of each layer being on the layer's GPU (a model spread evenly over two GPUs may use
        twice one GPU's room). ``free_bytes(device)``: what a GPU has free (``gpu_free_bytes``)."""
        gpus = Counter(device for device in layer_devices if device.type == "cuda")
        if not gpus:
            return cls()
        free_bytes = free_bytes or gpu_free_bytes
        room = min(free_bytes(device) * len(layer_devices) / count for device, count in gpus.items())
        return cls(max(1, int(GPU_SHARE * room)))

    def token_bytes(self, adapter: ModelAdapter) -> int:
        """Upper bound on what one token costs: K and V per layer plus a few activation copies."""
        per_layer = 2 * adapter.hidden_size * 4  # K and V (<= hidden wide), float32
        activations = 24 * adapter.hidden_size * 4  # residual, attention and MLP intermediates
        return adapter.num_layers * per_layer + activations

    def max_tokens(self, adapter: ModelAdapter) -> int:
        return max(1, self.bytes // self.token_bytes(adapter))

    @staticmethod
    def answer_row_tokens(length: int, max_new_tokens: int) -> int:
        """What one prompt of ``length`` tokens holds when answered greedily (``generate_ids``):
        its cache, grown by the answer but its last token, at most; the prompt's own forward
        (``token_bytes`` counts its activations) holds no more. A batch's sum fits ``max_tokens``.
        (Planned as a ``max_new_tokens``-th of the budget per prompt token, batches were up to
        ``max_new_tokens`` times smaller than they needed to be.)"""
        return length + max_new_tokens - 1

    @staticmethod
    def tokens_under_patches(length: int, patches: int, max_new_tokens: int) -> int:
        """What one prompt of ``length`` tokens holds when answered under ``patches`` patches at
        once (``generate_ids_under_patches``): its prefix's cache, and a fork of it per patch
        growing by the answer; a batch's sum of these fits ``max_tokens``."""
        return length + patches * (length + max_new_tokens)

    def sweep_query_bytes(self, adapter: ModelAdapter, length: int, rows: int) -> int:
        """Upper bound on what one query of ``length`` tokens costs in the layer sweep with ``rows``
        patched rows: its prefix (``token_bytes`` per token, all layers), plus per row one layer's
        keys and values over the prompt (tiled, concatenated, expanded to all heads: 3 copies, each
        <= hidden wide), the row's activations and its logits."""
        hidden = adapter.hidden_size
        per_row = 3 * 2 * hidden * 4 * length + 24 * hidden * 4 + adapter.vocab_size * 4
        return length * self.token_bytes(adapter) + rows * per_row


def gpu_free_bytes(device: torch.device) -> int:
    """Bytes a GPU can still give this process: what the driver has free plus what torch's
    allocator holds unused (freed tensors it keeps for reuse)."""
    free, _total = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def _layer_device(layer: torch.nn.Module, input_device: torch.device) -> torch.device:
    """Where a decoder layer computes: its weights' device; a layer whose weights accelerate
    offloaded (on ``meta`` until its forward) is counted on the model's input device."""
    device = next(layer.parameters()).device
    return input_device if device.type == "meta" else device


def sized_to(options: Batched, adapter: ModelAdapter) -> Batched:
    """``options`` with the memory budget a pipeline plans every batch of its run by: the one
    given, or ``MemoryBudget.for_model`` measured once, after the model loaded, so all batches
    of a run are planned alike and ``status.json`` records the budget used."""
    if options.memory_budget_mb is not None:
        return options
    return options.model_copy(update={"memory_budget_mb": MemoryBudget.for_model(adapter).megabytes})


def budget_of(adapter: ModelAdapter, megabytes: float | None) -> MemoryBudget:
    """The budget of ``megabytes``, or, where none is given, the model's (``for_model``)."""
    return MemoryBudget.for_model(adapter) if megabytes is None else MemoryBudget.from_mb(megabytes)


def token_counts(adapter: ModelAdapter, prompts: Sequence[Prompt]) -> list[int]:
    """Length of each prompt in tokens (images counted as their placeholder tokens). A prompt of
    no token has no last token to read or patch: refused here, before any forward pass (a
    tokenizer that adds a BOS token gives an empty text that token). One prompt given where a
    list of them goes is refused too: a string would be read as one prompt per character, and a
    prompt with a picture as one prompt per segment."""
    check_prompt_list(prompts)
    lengths = [adapter.token_count(p) for p in prompts]
    empty = [i for i, n in enumerate(lengths) if n == 0]
    if empty:
        raise ConfigError(f"prompt {empty[0]} is empty (no token): a prompt needs at least its query")
    limit = adapter.max_positions
    if limit is not None and lengths and max(lengths) > limit:
        # one message per model, not one per batch or caller: the warnings filter shows a message
        # once per place it is raised from, so the place is this line (the caller's was 4 places)
        warnings.warn(
            f"{adapter.name}: some prompts are longer than the {limit} positions the model was "
            "trained on (max_position_embeddings); what it answers past them is outside its range: "
            "use fewer examples (--n-examples) or shorter inputs",
            ContextLengthWarning,
            stacklevel=1,
        )
    return lengths


class ContextLengthWarning(ResultWarning):
    """A prompt longer than the model's trained context (``token_counts``)."""


def check_prompt_list(prompts: Sequence[Prompt]) -> None:
    """Refuses one prompt given where a list of them goes (``token_counts``)."""
    if isinstance(prompts, str):
        raise ConfigError(
            f"prompts must be a list of prompts, not one string ({prompts[:30]!r}); give [prompt]"
        )
    if isinstance(prompts, tuple) and any(isinstance(segment, Image.Image) for segment in prompts):
        kinds = ", ".join("text" if isinstance(segment, str) else "image" for segment in prompts)
        raise ConfigError(
            f"prompts must be a list of prompts, not one prompt (its segments: {kinds}); give [prompt]"
        )


def _plan(lengths: Sequence[int], cost, limit: int, max_prompts: int, too_big) -> Iterator[list[int]]:
    """Group prompt indices, sorted by length (little padding), into batches whose padded cost
    ``len(batch) * cost(longest)`` stays within ``limit``; at most ``max_prompts`` per batch. A
    prompt too big alone is refused before the first batch (the longest come last: checked as
    they came, the shorter ones' answers were computed, then thrown away)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    if order and cost(lengths[order[-1]]) > limit:
        raise MemoryBudgetError(too_big(lengths[order[-1]]))
    return _batches(order, lengths, cost, limit, max_prompts)


def _batches(
    order: list[int], lengths: Sequence[int], cost, limit: int, max_prompts: int
) -> Iterator[list[int]]:
    """``_plan``'s batches, the prompts in ``order`` (by length)."""
    batch: list[int] = []
    longest = 0
    for index in order:
        longest = max(longest, lengths[index])  # sorted, so this prompt is the longest so far
        if batch and (cost(longest) * (len(batch) + 1) > limit or len(batch) + 1 > max_prompts):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def plan_sweep_batches(
    adapter: ModelAdapter,
    lengths: Sequence[int],
    rows_per_prompt: int,
    budget: MemoryBudget,
    max_rows: int = 4096,
) -> Iterator[list[int]]:
    """Batches of queries for the layer sweep (``rows_per_prompt`` patched rows each) whose working
    set (``MemoryBudget.sweep_query_bytes``) fits the budget; at most ``max_rows`` rows a batch."""
    rows = max(1, rows_per_prompt)

    def too_big(length: int) -> str:
        return (
            f"one query of {length} tokens with {rows} patched layers needs more than the memory budget "
            f"({budget.bytes / (1 << 20):.3g} MB); raise it (--memory-budget-mb, or budget= in the "
            "library) or sweep fewer layers"
        )

    return _plan(
        lengths,
        lambda n: budget.sweep_query_bytes(adapter, n, rows),
        budget.bytes,
        max(1, max_rows // rows),
        too_big,
    )


def plan_batches(
    lengths: Sequence[int],
    max_tokens: int,
    rows_per_prompt: int = 1,
    max_rows: int = 512,
    held: Callable[[int], int] | None = None,
) -> Iterator[list[int]]:
    """Group prompt indices (sorted by length, so little padding) into batches whose padded size
    times ``rows_per_prompt`` fits in ``max_tokens``; or, given ``held``, what a prompt of a
    length holds (``MemoryBudget.answer_row_tokens``, ``tokens_under_patches``). Raises, before
    the first batch, if one prompt alone does not fit."""

    def cost(length: int) -> int:
        return held(length) if held is not None else length * rows_per_prompt

    def too_big(length: int) -> str:
        return (
            f"one prompt of {length} tokens needs {cost(length)} tokens of the memory budget (its "
            f"cache, the answer's and every row's), which allows {max_tokens}; raise it "
            "(--memory-budget-mb, or budget= in the library)"
        )

    return _plan(lengths, cost, max_tokens, max(1, max_rows // rows_per_prompt), too_big)
