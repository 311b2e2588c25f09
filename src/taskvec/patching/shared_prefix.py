"""Greedy answers of prompts that begin alike, the common beginning run once.

The xBase prompts of a reproduction's conditions that share their demonstrations differ only in
the query: text ICL -> text, -> image (noto), -> image (openmoji) put the same five examples
(about 50 tokens) before a query of about 10. ``generate_ids_after_prefixes`` runs each prefix
once into a KV cache and every prompt that continues it from there, with the positions and
attention mask a full forward of the prompt would have: the same greedy tokens as
``generate_ids`` on the whole prompts, up to float rounding (tested token for token), for about
a third of the prompt tokens when three conditions share the examples.

Only families whose inputs are plain token positions plus per-image embeddings can continue a
cached prefix (``ModelAdapter.continues_cached_prefix``); for the others, and for any prompt whose
tokens do not begin with its prefix's tokens (a tokeniser merging across the boundary), the
prompts run whole through ``generate_ids``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress

import torch

from taskvec.errors import ConfigError
from taskvec.models.adapter import Encoded, ModelAdapter, NotAPrefix, model_call
from taskvec.models.batching import MemoryBudget, OnProgress, plan_batches, progress_from, token_counts
from taskvec.models.cache_keyword import cache_argument, cache_of
from taskvec.models.head import greedy_head, unread_head
from taskvec.models.shared_work import prompts_digest
from taskvec.patching.kv_cache import cache_rows
from taskvec.patching.patch import AnswerComplete, generate_ids, greedy_continue
from taskvec.prompts.template import Prompt


@model_call
@torch.no_grad()
def generate_ids_after_prefixes(
    adapter: ModelAdapter,
    prefixes: Sequence[Prompt],
    prompts: Sequence[Sequence[Prompt]],
    max_new_tokens: int = 1,
    budget: MemoryBudget | None = None,
    until: AnswerComplete | None = None,
    on_progress: OnProgress | None = None,
) -> list[list[list[int]]]:
    """``prompts[i]`` are whole prompts that begin with ``prefixes[i]``; returns the greedy answer
    ids of each, ``[i][j]``, as ``generate_ids`` would give them, running each distinct prefix
    once (groups with the same prefix, such as an instruction before every query, run together).
    ``on_progress(done, total)`` is told the prompts answered after each batch."""
    if len(prefixes) != len(prompts):
        raise ConfigError(
            f"{len(prefixes)} prefixes for {len(prompts)} groups of prompts; give one per group"
        )
    first: dict[str, int] = {}  # a prefix's digest -> its index among the distinct prefixes
    distinct: list[Prompt] = []
    merged: list[list[Prompt]] = []
    starts: list[tuple[int, int]] = []  # per group: its distinct prefix, where its prompts start
    for prefix, group in zip(prefixes, prompts, strict=True):
        index = first.setdefault(prompts_digest([prefix]), len(distinct))
        if index == len(distinct):
            distinct.append(prefix)
            merged.append([])
        starts.append((index, len(merged[index])))
        merged[index].extend(group)
    budget = budget or MemoryBudget.for_model(adapter)
    answers = _after_distinct_prefixes(adapter, distinct, merged, max_new_tokens, budget, until, on_progress)
    return [
        answers[index][start : start + len(group)]
        for (index, start), group in zip(starts, prompts, strict=True)
    ]


def _after_distinct_prefixes(
    adapter: ModelAdapter,
    prefixes: Sequence[Prompt],
    prompts: Sequence[Sequence[Prompt]],
    max_new_tokens: int,
    budget: MemoryBudget,
    until: AnswerComplete | None,
    on_progress: OnProgress | None = None,
) -> list[list[list[int]]]:
    results: list[list[list[int] | None]] = [[None] * len(group) for group in prompts]
    total, done = sum(len(group) for group in prompts), 0
    continuations: dict[int, list[tuple[list[int], dict]]] = {}
    if adapter.continues_cached_prefix:
        for i, (prefix, group) in enumerate(zip(prefixes, prompts, strict=True)):
            with suppress(NotAPrefix):  # else the group runs whole, below
                continuations[i] = [adapter.continuation(prefix, prompt) for prompt in group]
    shared = [i for i in continuations if continuations[i]]
    if shared:
        prefix_lengths = token_counts(adapter, [prefixes[i] for i in shared])
        # a row holds its prefix, its longest continuation and the answer at once
        lengths = {
            i: n + max(len(ids) for ids, _ in continuations[i]) + max_new_tokens
            for n, i in zip(prefix_lengths, shared, strict=True)
        }
        # the prefix cache, and a copy of it for each continuation running at the same time
        rows_per_prefix = 1 + max(len(continuations[i]) for i in shared)
        max_tokens = budget.max_tokens(adapter)
        shared = [i for i in shared if lengths[i] * rows_per_prefix <= max_tokens]  # else: whole
        batches = plan_batches([lengths[i] for i in shared], max_tokens, rows_per_prefix) if shared else []
        for batch in batches:
            rows = [shared[b] for b in batch]
            answers = _run_batch(
                adapter, [prefixes[i] for i in rows], [continuations[i] for i in rows], max_new_tokens, until
            )
            for i, row_answers in zip(rows, answers, strict=True):
                results[i] = row_answers
            done += sum(len(prompts[i]) for i in rows)
            if on_progress is not None:
                on_progress(done, total)
    whole = [(i, j) for i, group in enumerate(results) for j, answer in enumerate(group) if answer is None]
    if whole:
        told = progress_from(on_progress, done, total)
        ids = generate_ids(
            adapter, [prompts[i][j] for i, j in whole], None, max_new_tokens, budget, until, told
        )
        for (i, j), answer in zip(whole, ids, strict=True):
            results[i][j] = answer
    return results  # type: ignore[return-value]


def _run_batch(
    adapter: ModelAdapter,
    prefixes: list[Prompt],
    continuations: list[list[tuple[list[int], dict]]],
    max_new_tokens: int,
    until: AnswerComplete | None,
) -> list[list[list[int]]]:
    """One batch of prefixes (left-padded, run once), each continued by each of its prompts. The
    continuations run in groups of equal length, so every row's tokens stay contiguous at the end
    of the batch, as in a full forward (no padding between prefix and continuation: sliding-window
    attention sees what it would see in the whole prompt)."""
    encoded = adapter.encode(prefixes)
    with unread_head(adapter.unembedding()):
        cache = cache_of(adapter.forward(encoded, use_cache=True))
    answers: dict[tuple[int, int], list[int]] = {}
    by_length: dict[int, list[tuple[int, int]]] = {}
    for r, pieces in enumerate(continuations):
        for j, (ids, _) in enumerate(pieces):
            by_length.setdefault(len(ids), []).append((r, j))
    for length in sorted(by_length):
        cells = by_length[length]
        rows = torch.tensor([r for r, _ in cells], device=encoded.device)
        tokens = _continue(
            adapter,
            adapter.rows(encoded, rows),
            cache_rows(cache, rows),
            [continuations[r][j] for r, j in cells],
            max_new_tokens,
            until,
        )
        answers.update(zip(cells, tokens, strict=True))
    return [[answers[(r, j)] for j in range(len(pieces))] for r, pieces in enumerate(continuations)]


def _continue(
    adapter: ModelAdapter,
    prefix: Encoded,
    cache,
    pieces: list[tuple[list[int], dict]],
    max_new_tokens: int,
    until: AnswerComplete | None,
) -> list[list[int]]:
    """Greedy answers of ``prefix`` rows (their cache given) continued by ``pieces`` of equal
    length (ids and extra inputs each)."""
    ids = torch.tensor([p for p, _ in pieces], device=prefix.device)  # [rows, length]
    full = Encoded(
        torch.cat([prefix.input_ids, ids], 1), torch.cat([prefix.attention_mask, torch.ones_like(ids)], 1)
    )
    keys = sorted({key for _, e in pieces for key in e})  # per-image inputs, in row order
    extra = {key: torch.cat([e[key] for _, e in pieces if key in e]).to(prefix.device) for key in keys}
    with greedy_head(adapter.unembedding()) as head:
        output = adapter.model(
            input_ids=ids,
            attention_mask=full.attention_mask,
            position_ids=full.position_ids()[:, -ids.shape[1] :],
            **cache_argument(cache),
            use_cache=max_new_tokens > 1,
            logits_to_keep=1,
            **extra,
        )
        return greedy_continue(adapter, head, full, output, max_new_tokens, until)


__all__ = ["generate_ids_after_prefixes"]
