"""Prompts answered under several patches at once (``generate_ids_under_patches``) answer what one
``generate_ids`` run per patch answers, token for token, while each prompt's tokens before the
patched one run once: on tiny LMs of every attention scheme the engine meets, with patches of
different layers, modes and scales and a clean control among them, within small budgets, and on
the real SmolLM2. Where the prefix cannot be continued, the prompts run whole, once per patch."""

import pytest
import torch
from helpers.families import paligemma
from helpers.patches import mixed_patches, sequence_lengths_through_first_layer, shapes_through_first_layer
from helpers.tinyllm import ARCHITECTURES, text_queries, tiny_text_lm
from helpers.tinyparts import image_query

import taskvec.patching.kv_cache as kv_cache
from taskvec.errors import ConfigError, VectorMismatchError
from taskvec.models.batching import MemoryBudget, token_counts
from taskvec.patching.patch import (
    Patch,
    generate,
    generate_ids,
    generate_ids_under_patches,
    generate_under_patches,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def text_lm(request):
    return tiny_text_lm(request.param)


def one_run_per_patch(adapter, prompts, patches, tokens, budget=None) -> list[list[list[int]]]:
    return [generate_ids(adapter, prompts, p, tokens, budget) for p in patches]


def test_answers_equal_one_run_per_patch_on_tiny_lms(text_lm):
    prompts = text_queries(5)
    patches = mixed_patches(text_lm)
    expected = one_run_per_patch(text_lm, prompts, patches, 3)
    assert generate_ids_under_patches(text_lm, prompts, patches, 3) == expected
    # the patches matter: a function that ignored them would pass otherwise
    assert any(answers != expected[0] for answers in expected[1:])


def test_each_prompt_runs_once_before_its_patched_token(text_lm):
    prompts = text_queries(5)
    longest = max(token_counts(text_lm, prompts))
    patches = mixed_patches(text_lm)
    shapes = shapes_through_first_layer(
        text_lm, lambda: generate_ids_under_patches(text_lm, prompts, patches, 3)
    )
    # one prefix forward, then the patched last token and two answer tokens, one at a time, the
    # rows of every patch (of all modes and scales) in one batch
    assert [tuple(shape[:2]) for shape in shapes] == [(5, longest - 1)] + [(5 * len(patches), 1)] * 3


def test_small_budgets_split_the_prompts_without_changing_answers(text_lm):
    prompts = text_queries(6)
    patches = mixed_patches(text_lm)
    longest = max(token_counts(text_lm, prompts))
    tight = MemoryBudget(2 * 2 * longest * 2 * MemoryBudget().token_bytes(text_lm))  # two prompts a batch
    calls = sequence_lengths_through_first_layer(
        text_lm, lambda: generate_ids_under_patches(text_lm, prompts, patches, 2, tight)
    )
    assert sum(length > 1 for length in calls) > 1  # the prompts went in several batches
    assert generate_ids_under_patches(text_lm, prompts, patches, 2, tight) == one_run_per_patch(
        text_lm, prompts, patches, 2
    )


def test_an_unknown_cache_runs_the_prompts_whole(monkeypatch):
    lm = tiny_text_lm("llama-gqa")
    monkeypatch.setattr(kv_cache, "FORKABLE_LAYERS", ())
    prompts, patches = text_queries(4), mixed_patches(lm)
    calls = sequence_lengths_through_first_layer(
        lm, lambda: generate_ids_under_patches(lm, prompts, patches, 2)
    )
    assert sum(length > 1 for length in calls) == 1 + len(patches)  # the prefix, then whole per patch
    assert generate_ids_under_patches(lm, prompts, patches, 2) == one_run_per_patch(lm, prompts, patches, 2)


def test_a_family_whose_prefix_sees_the_last_token_runs_whole():
    vlm = paligemma.build()
    assert not vlm.prefix_cache_is_exact
    prompts = [image_query(0), image_query(1), *text_queries(2)]
    patches = mixed_patches(vlm)
    calls = sequence_lengths_through_first_layer(
        vlm, lambda: generate_ids_under_patches(vlm, prompts, patches, 2)
    )
    assert sum(length > 1 for length in calls) == len(patches)  # a whole forward per patch
    assert generate_ids_under_patches(vlm, prompts, patches, 2) == one_run_per_patch(vlm, prompts, patches, 2)


def test_a_bad_patch_is_refused_before_any_forward():
    lm = tiny_text_lm("llama-gqa")
    with pytest.raises(VectorMismatchError, match="cannot be patched"):
        generate_ids_under_patches(lm, text_queries(2), [None, Patch(0, torch.zeros(lm.hidden_size + 1))])


def _under_a_clean_patch(lm, prompts, **options):
    return generate_ids_under_patches(lm, prompts, [None], **options)


@pytest.mark.parametrize("run", [generate_ids, _under_a_clean_patch])
def test_an_empty_prompt_or_an_answer_of_no_token_is_refused_with_its_reason(run, smollm2):
    """An empty prompt (no token: SmolLM2's tokenizer adds no BOS) has no last token to read; it
    ended in a reshape error inside attention. ``max_new_tokens=0`` answered one token anyway."""
    with pytest.raises(ConfigError, match="prompt 1 is empty"):
        run(smollm2, [text_queries(1)[0], ""])
    with pytest.raises(ConfigError, match="max_new_tokens must be at least 1, got 0"):
        run(smollm2, text_queries(2), max_new_tokens=0)


@pytest.mark.slow
def test_answers_equal_one_run_per_patch_on_smollm2(smollm2):
    from taskvec.prompts.template import SPACED
    from taskvec.vectors.extract import last_token_states

    demos = [("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "Lima"), ("Kenya", "Nairobi")]
    states = last_token_states(smollm2, [SPACED.icl(demos[:3], "Italy"), SPACED.icl(demos[1:], "Spain")])
    prompts = [SPACED.query(country) for country in ("Egypt", "Chile", "Norway", "India", "Cuba")]
    patches = [None, *(Patch(layer, states[0, layer]) for layer in (8, 12, 16)), Patch(12, states[1, 12])]
    expected = one_run_per_patch(smollm2, prompts, patches, 3)
    assert generate_ids_under_patches(smollm2, prompts, patches, 3) == expected
    assert any(answers != expected[0] for answers in expected[1:])


def test_texts_under_patches_are_those_of_generate():
    lm = tiny_text_lm("llama-gqa")
    prompts, patches = text_queries(4), mixed_patches(lm)
    texts = generate_under_patches(lm, prompts, patches, max_new_tokens=3)
    assert texts == [generate(lm, prompts, p, max_new_tokens=3) for p in patches]
