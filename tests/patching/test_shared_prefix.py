"""Prompts that begin alike, the beginning run once (``generate_ids_after_prefixes``), answer what
whole prompts answer (``generate_ids``), token for token: on tiny LMs of every attention scheme the
engine meets (sliding windows shorter than the prompts included), and on the real SmolLM2. A prompt
that does not continue its prefix, or a family that cannot continue a cached prefix, runs whole."""

import pytest
import torch
from helpers.families import llava
from helpers.tinyllm import ARCHITECTURES, tiny_text_lm
from helpers.tinyparts import image_query

import taskvec.patching.shared_prefix as shared_prefix
from taskvec.models.batching import MemoryBudget, token_counts
from taskvec.patching.patch import generate_ids
from taskvec.patching.shared_prefix import generate_ids_after_prefixes
from taskvec.prompts.template import PAPER, SPACED

torch.set_num_threads(1)

WORDS = ["cat", "a dog", "red sun", "sky", "the tall tree", "Peru", "moon"]


def groups(template, count: int = 4, queries: int = 3):
    """Per group: some examples (uneven lengths), and prompts asking different queries after them."""
    prefixes, prompts = [], []
    for g in range(count):
        demos = [(WORDS[(g + k) % len(WORDS)], WORDS[(g + k + 1) % len(WORDS)]) for k in range(1 + g % 3)]
        prefixes.append(template.examples(demos))
        prompts.append([template.icl(demos, WORDS[(g + 2 * q) % len(WORDS)]) for q in range(queries)])
    return prefixes, prompts


def count_whole_runs(monkeypatch) -> list[int]:
    runs = []
    real = shared_prefix.generate_ids
    monkeypatch.setattr(
        shared_prefix,
        "generate_ids",
        lambda adapter, prompts, *a: runs.append(len(prompts)) or real(adapter, prompts, *a),
    )
    return runs


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def text_lm(request):
    return tiny_text_lm(request.param)


def test_answers_equal_whole_prompts_on_tiny_lms(text_lm, monkeypatch):
    prefixes, prompts = groups(PAPER)
    whole_runs = count_whole_runs(monkeypatch)
    shared = generate_ids_after_prefixes(text_lm, prefixes, prompts, max_new_tokens=3)
    assert whole_runs == []  # every prompt continued its cached prefix
    flat = [p for group in prompts for p in group]
    expected = generate_ids(text_lm, flat, None, 3)
    assert [ids for group in shared for ids in group] == expected


def test_small_budgets_split_the_prefixes_without_changing_answers(text_lm):
    prefixes, prompts = groups(PAPER, count=5)
    longest = max(token_counts(text_lm, [p for group in prompts for p in group]))

    def budget(tokens: int) -> MemoryBudget:
        return MemoryBudget(tokens * MemoryBudget().token_bytes(text_lm))

    roomy = generate_ids_after_prefixes(text_lm, prefixes, prompts, 2)
    # room for one or two prefixes with their continuations at a time
    assert generate_ids_after_prefixes(text_lm, prefixes, prompts, 2, budget(10 * longest)) == roomy
    # too little for a prefix and its continuations at once: the prompts run whole
    assert generate_ids_after_prefixes(text_lm, prefixes, prompts, 2, budget(3 * longest)) == roomy


def test_groups_with_the_same_prefix_run_it_once_and_keep_their_own_answers(text_lm, monkeypatch):
    """An instruction before every query (one group per item, all with the same prefix), with an
    ICL group among them: each distinct prefix runs once, every group gets its own answers."""
    instruction = "The colour of the thing:"
    lead = SPACED.instruction_lead(instruction)
    demos = [("cat", "dog"), ("sky", "moon")]
    prefixes = [lead, lead, SPACED.examples(demos), lead]
    prompts = [
        [SPACED.instructed(instruction, "red sun"), SPACED.instructed(instruction, "Peru")],
        [SPACED.instructed(instruction, "a dog")],
        [SPACED.icl(demos, "the tall tree")],
        [SPACED.instructed(instruction, "sky"), SPACED.instructed(instruction, "cat")],
    ]
    run = []
    real_batch = shared_prefix._run_batch
    monkeypatch.setattr(
        shared_prefix,
        "_run_batch",
        lambda adapter, batch_prefixes, *a: (
            run.extend(batch_prefixes) or real_batch(adapter, batch_prefixes, *a)
        ),
    )
    shared = generate_ids_after_prefixes(text_lm, prefixes, prompts, 2)
    assert sorted(run) == sorted([lead, SPACED.examples(demos)])
    assert [len(group) for group in shared] == [2, 1, 1, 2]
    assert shared == [generate_ids(text_lm, group, None, 2) for group in prompts]


def test_a_prompt_that_does_not_continue_its_prefix_runs_whole(monkeypatch):
    lm = tiny_text_lm("llama-gqa")
    prefixes, prompts = groups(PAPER, count=2)
    prefixes[1] = ("Q:nothing like it\nA:",)
    whole_runs = count_whole_runs(monkeypatch)
    shared = generate_ids_after_prefixes(lm, prefixes, prompts, 2)
    assert whole_runs == [len(prompts[1])]
    assert shared == [generate_ids(lm, group, None, 2) for group in prompts]


def test_a_family_without_prefix_continuation_runs_whole(monkeypatch):
    vlm = llava.build_llava()
    assert not vlm.continues_cached_prefix
    prefixes = [PAPER.examples([("cat", "dog")])]
    prompts = [[PAPER.icl([("cat", "dog")], "sky"), (*PAPER.examples([("cat", "dog")]), *image_query(0))]]
    whole_runs = count_whole_runs(monkeypatch)
    assert generate_ids_after_prefixes(vlm, prefixes, prompts, 2) == [generate_ids(vlm, prompts[0], None, 2)]
    assert whole_runs == [2]


@pytest.mark.slow
def test_answers_equal_whole_prompts_on_smollm2(smollm2):
    prefixes, prompts = groups(SPACED, count=6)
    shared = generate_ids_after_prefixes(smollm2, prefixes, prompts, 3)
    assert [ids for group in shared for ids in group] == generate_ids(
        smollm2, [p for g in prompts for p in g], None, 3
    )
