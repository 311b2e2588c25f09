"""The long computations tell how far they are after each batch (``on_progress(done, total)``),
for the progress bars of the pipelines; listening changes none of their results."""

import torch
from helpers.tinyllm import text_queries, tiny_text_lm

from taskvec.models.batching import MemoryBudget, token_counts
from taskvec.patching.patch import Patch, generate_ids, generate_ids_under_patches
from taskvec.patching.shared_prefix import generate_ids_after_prefixes
from taskvec.patching.sweep import sweep, sweep_naive
from taskvec.prompts.template import PAPER
from taskvec.vectors.extract import last_token_states

torch.set_num_threads(1)


def _small(adapter, prompts, tokens_per_token: int = 1) -> MemoryBudget:
    """Room for about two of ``prompts`` a batch (each token taking ``tokens_per_token``): the work
    comes in several batches."""
    longest = max(token_counts(adapter, prompts))
    return MemoryBudget(2 * tokens_per_token * longest * MemoryBudget().token_bytes(adapter))


def _told() -> tuple[list[tuple[int, int]], object]:
    told: list[tuple[int, int]] = []
    return told, lambda done, total: told.append((done, total))


def _counts_up(told: list[tuple[int, int]], total: int) -> None:
    """Told more than once, rising, all of the same total, ending there."""
    assert len(told) > 1, told
    assert {t for _, t in told} == {total}
    done = [d for d, _ in told]
    assert done == sorted(done) and done[0] > 0 and done[-1] == total


def test_the_sweep_tells_its_rows_on_both_paths():
    adapter = tiny_text_lm("llama-gqa")
    queries = text_queries(6)
    layers = [0, 2, 3]
    vectors = 3 * torch.randn(len(layers), adapter.hidden_size, generator=torch.Generator().manual_seed(0))
    longest = max(token_counts(adapter, queries))
    small = MemoryBudget(2 * MemoryBudget().sweep_query_bytes(adapter, longest, len(layers)))
    told, listen = _told()
    heard = sweep(adapter, queries, vectors, layers, small, on_progress=listen)
    _counts_up(told, len(queries) * len(layers))
    quiet = sweep(adapter, queries, vectors, layers, small)
    assert torch.equal(heard.patched, quiet.patched) and torch.equal(heard.clean, quiet.clean)

    told, listen = _told()
    naive = sweep_naive(adapter, queries, vectors, layers, on_progress=listen)
    _counts_up(told, len(queries) * len(layers))
    assert told[0] == (1, len(queries) * len(layers))  # one query at a time, layer by layer
    assert torch.equal(naive.patched, quiet.patched)


def test_answers_and_states_are_told_per_batch():
    adapter = tiny_text_lm("llama-gqa")
    prompts = text_queries(6)
    small = _small(adapter, prompts, tokens_per_token=3)
    told, listen = _told()
    answers = generate_ids(adapter, prompts, None, 3, small, on_progress=listen)
    _counts_up(told, len(prompts))
    assert answers == generate_ids(adapter, prompts, None, 3, small)

    patches = [None, Patch(1, torch.ones(adapter.hidden_size))]
    told, listen = _told()
    under = generate_ids_under_patches(adapter, prompts, patches, 3, small, on_progress=listen)
    _counts_up(told, len(prompts) * len(patches))  # one answer per prompt and patch
    assert under == generate_ids_under_patches(adapter, prompts, patches, 3, small)

    small = _small(adapter, prompts)
    told, listen = _told()
    states = last_token_states(adapter, prompts, small, on_progress=listen)
    _counts_up(told, len(prompts))
    assert torch.equal(states, last_token_states(adapter, prompts, small))


def test_prompts_after_shared_prefixes_are_told_as_they_are_answered():
    adapter = tiny_text_lm("llama-gqa")
    demos = [[("cat", "dog")], [("sky", "sun"), ("Peru", "Lima")], [("moon", "night")]]
    prefixes = [PAPER.examples(d) for d in demos]
    prompts = [[PAPER.icl(d, word) for word in ("red", "tree")] for d in demos]
    small = _small(adapter, [p for group in prompts for p in group], tokens_per_token=3)
    told, listen = _told()
    answers = generate_ids_after_prefixes(adapter, prefixes, prompts, 2, small, on_progress=listen)
    _counts_up(told, 6)
    assert answers == generate_ids_after_prefixes(adapter, prefixes, prompts, 2, small)
