"""The behaviours issue 8 asks of every vision-language family, run on each family's tiny model.

One parametrised test per behaviour: placeholder expansion, the delimiter position, what a patch
may change, the cached last-token step, fast sweep == naive sweep, text-only and mixed prompts,
and loading through the registry from a local folder.
"""

import copy

import pytest
import torch
from helpers.contract import (
    cached_last_step,
    check_cached_step_equals_full_forward,
    check_last_layer_patch_decodes_the_vector,
    check_last_token_is_delimiter,
    check_logit_lens_is_the_models_own_read_out,
    check_patch_is_causal,
    check_patch_reaches_earlier_positions,
    check_sweep_matches_naive,
    count_tokens,
    task_vectors,
)
from helpers.families import CASES
from helpers.tinyllm import ARCHITECTURES
from helpers.tinyparts import (
    image_examples_text_query,
    image_icl,
    image_query,
    mixed_prompts,
    text_examples_image_query,
    text_icl,
    text_query,
)

from taskvec.models.cache_keyword import cache_argument, cache_of
from taskvec.models.registry import FAMILIES, LoadOptions, load_model
from taskvec.patching.patch import Patch, generate_ids, generate_ids_under_patches

torch.set_num_threads(1)


@pytest.fixture(params=CASES, ids=str)
def family(request):
    case = request.param
    return case, case.build()


def test_every_registered_family_is_under_contract():
    """A vision family has its tiny case here; a text one its tiny scheme in ``ARCHITECTURES``, on
    which the engine's tests (fast sweep == naive, patches, answers, the logit lens) run."""
    vision = {t for t, family in FAMILIES.items() if family.adapter_class.supports_images}
    assert vision == {case.model_type for case in CASES}
    assert set(FAMILIES) - vision <= {scheme["model_type"] for scheme in ARCHITECTURES.values()}


def test_the_tiny_model_is_of_its_model_type(family):
    case, adapter = family
    assert adapter.model.config.model_type == case.model_type
    # the layers its config counts (a layer out of range is refused by it before a model loads)
    assert adapter.num_layers == adapter.model.config.get_text_config().num_hidden_layers


def test_images_expand_to_the_right_number_of_placeholders(family):
    case, adapter = family
    prompts = [image_query(0), image_icl(0), text_query(0), *mixed_prompts()]
    encoded = adapter.encode(prompts)
    k = case.tokens_per_image
    assert count_tokens(encoded, case.image_token_id(adapter)) == [k, 3 * k, 0, k, 2 * k]


def test_vector_and_patch_position_is_the_delimiter(family):
    case, adapter = family
    prompts = [image_query(0), text_icl(1), image_icl(2), text_query(3), *mixed_prompts()]
    check_last_token_is_delimiter(adapter, case, prompts)


def test_patching_changes_only_the_last_position_and_later(family):
    """Where the model is causal. A bidirectional prefix (PaliGemma) lets earlier positions see the
    patch from the next layer on: that is why such a family declares its prefix cache inexact."""
    case, adapter = family
    prompts = [image_icl(0), text_query(1), *mixed_prompts()]
    if adapter.prefix_cache_is_exact:
        check_patch_is_causal(adapter, prompts, case.patch_layer)
    else:
        check_patch_reaches_earlier_positions(adapter, prompts, case.patch_layer)


def test_the_cached_last_token_step_is_exact_where_declared(family):
    """The adapter's prefix / rows / last-token inputs reproduce a full forward, row for row, in
    every family that declares its prefix cache exact; where it declares it inexact (PaliGemma's
    bidirectional prefix), the cached step would indeed be wrong."""
    _case, adapter = family
    prompts = [image_query(0), text_icl(1), image_icl(2), *mixed_prompts()]
    if adapter.prefix_cache_is_exact:
        check_cached_step_equals_full_forward(adapter, prompts)
    else:
        encoded = adapter.encode(prompts)
        with torch.no_grad():
            full = adapter.forward(encoded).logits[:, -1]
        cached, _states = cached_last_step(adapter, encoded, repeats=1)
        # outside the tolerance every exact family meets (the tiny model's effect is ~1e-3: a
        # looser bound passed on torch 2.13 and failed on 2.11, whose random init differs)
        assert not torch.allclose(cached, full, atol=1e-4, rtol=1e-4)


def test_a_generation_step_continues_the_prompt(family):
    """``grow`` + ``last_token_inputs`` after a cached forward give the logits of a full forward
    over the prompt plus the generated token (multi-token answers, the ``exact`` metric)."""
    _case, adapter = family
    encoded = adapter.encode([image_query(0), text_icl(1), image_icl(2), *mixed_prompts()])
    with torch.no_grad():
        out = adapter.forward(encoded, use_cache=True)
        grown = adapter.grow(encoded, out.logits[:, -1].argmax(-1, keepdim=True))
        step = adapter.model(
            **adapter.last_token_inputs(grown), **cache_argument(cache_of(out)), logits_to_keep=1
        ).logits[:, -1]
        full = adapter.forward(grown).logits[:, -1]
    torch.testing.assert_close(step, full, atol=1e-4, rtol=1e-4)


def test_generated_answers_equal_greedy_full_forwards(family):
    """``generate_ids`` (cached steps) picks the tokens that re-running the whole prompt plus the
    answer so far would pick, for every step of a multi-token answer."""
    _case, adapter = family
    prompts = [image_query(0), text_icl(1), *mixed_prompts()]
    generated = generate_ids(adapter, prompts, max_new_tokens=3)
    encoded = adapter.encode(prompts)
    with torch.no_grad():
        for step in range(3):
            chosen = adapter.forward(encoded).logits[:, -1].argmax(-1, keepdim=True)  # [batch, 1]
            assert chosen[:, 0].tolist() == [ids[step] for ids in generated]
            encoded = adapter.grow(encoded, chosen)


def test_answers_under_several_patches_equal_one_run_per_patch(family):
    """``generate_ids_under_patches`` (each prompt's tokens before the patched one run once, for
    all patches) picks the tokens of one ``generate_ids`` run per patch, images in the prefix."""
    _case, adapter = family
    prompts = [image_query(0), image_query(1), text_query(2), *mixed_prompts()]
    far = task_vectors(adapter, [image_icl(0), image_icl(1)]) + 3 * torch.randn(
        adapter.num_layers, adapter.hidden_size, generator=torch.Generator().manual_seed(2)
    )
    patches = [None, Patch(1, far[1]), Patch(1, far[2 % adapter.num_layers]), Patch(0, far[0], "add", 0.5)]
    expected = [generate_ids(adapter, prompts, p, 3) for p in patches]
    assert generate_ids_under_patches(adapter, prompts, patches, 3) == expected
    assert any(answers != expected[0] for answers in expected[1:]), "no patch changed any answer"


def test_answers_that_end_early_are_the_full_answers_cut_there(family):
    """A row whose answer is complete leaves the batch with its cache rows and per-token inputs
    (Qwen's 3-D positions, Mllama's image mask); the rows still going answer as before."""
    _case, adapter = family
    prompts = [image_query(0), image_query(1), text_icl(1), text_query(2), *mixed_prompts()]
    full = generate_ids(adapter, prompts, None, 4)

    def until(ids: list[int]) -> bool:
        """After two tokens, unless the answer begins like the first prompt's: that runs on."""
        return len(ids) == 2 and ids != full[0][:2]

    ended = generate_ids(adapter, prompts, None, 4, until=until)
    assert ended == [answer[:2] if until(answer[:2]) else answer for answer in full]
    if any(until(answer[:2]) for answer in full):  # not where the tiny model answers all alike
        assert {len(answer) for answer in ended} == {2, 4}
    patches = [None, Patch(1, 3 * torch.ones(adapter.hidden_size))]
    expected = [generate_ids(adapter, prompts, p, 4, until=until) for p in patches]
    assert generate_ids_under_patches(adapter, prompts, patches, 4, until=until) == expected


def test_fast_sweep_equals_naive_sweep(family):
    _case, adapter = family
    vectors = task_vectors(adapter, [image_icl(0), image_icl(1)])
    check_sweep_matches_naive(adapter, vectors, [image_query(3), text_query(4), *mixed_prompts()])


def test_text_only_prompts(family):
    case, adapter = family
    prompts = [text_query(0), text_icl(1)]
    encoded = adapter.encode(prompts)
    assert count_tokens(encoded, case.image_token_id(adapter)) == [0, 0]
    assert not any(key.startswith("pixel") for key in encoded.extra)
    check_sweep_matches_naive(adapter, task_vectors(adapter, [text_icl(2), text_icl(3)]), prompts)
    if case.text_path_is_plain_lm:  # no image machinery on the text path: just the language model
        with torch.no_grad():
            ours = adapter.forward(encoded).logits[:, -1]
            hidden = adapter.language_model()(
                input_ids=encoded.input_ids,
                attention_mask=encoded.attention_mask,
                position_ids=encoded.position_ids(),
            ).last_hidden_state
            theirs = adapter.unembedding()(hidden[:, -1])
        torch.testing.assert_close(ours, theirs)


def test_mixed_prompts(family):
    """A text-ICL vector read by image queries, an image-ICL vector read by text queries."""
    _case, adapter = family
    text_vector = task_vectors(adapter, [text_icl(0), text_icl(1)])
    image_vector = task_vectors(adapter, [image_icl(0), image_icl(1)])
    image_queries = [image_query(2), text_examples_image_query(3)]
    text_queries = [text_query(4), image_examples_text_query(5)]
    check_last_layer_patch_decodes_the_vector(adapter, text_vector, image_queries)
    check_last_layer_patch_decodes_the_vector(adapter, image_vector, text_queries)
    check_logit_lens_is_the_models_own_read_out(adapter, [*image_queries, *text_queries])
    # (the sweep over mixed queries is in test_fast_sweep_equals_naive_sweep)


def test_loads_through_the_registry_from_a_local_folder(family, tmp_path):
    """``load_model(path)``: config.model_type -> this family's loader (model class + processor,
    rebuilt without its video part where that needs torchvision), nothing from the hub."""
    _case, adapter = family
    adapter.model.save_pretrained(tmp_path)
    adapter.processor.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), LoadOptions(cache_dir=tmp_path / "cache"))
    assert type(loaded) is type(adapter)
    assert len(loaded.fingerprint) == 16  # a hash of the saved weights (no hub commit here)
    prompts = [image_query(0), text_query(1)]
    encoded = loaded.encode(prompts)
    assert torch.equal(encoded.input_ids, adapter.encode(prompts).input_ids)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.forward(encoded).logits, adapter.forward(adapter.encode(prompts)).logits
        )


def test_bfloat16_runs_every_path_and_gives_float32_cpu_results(family):
    """bfloat16 is how a GPU user runs a 7B VLM; Fuyu's patches met its bfloat16 projection as
    float32 and failed. Extraction, the sweep (fast == plain) and patched answers run, and the
    vectors leave as float32 on the CPU."""
    _case, cached = family
    adapter = copy.deepcopy(cached)  # the tiny models are built once per session: cast a copy
    adapter.model.to(torch.bfloat16)
    states = task_vectors(adapter, [image_icl(0), image_icl(1)])
    assert states.dtype == torch.float32 and states.device.type == "cpu"
    queries = [image_query(3), image_query(4)]
    check_sweep_matches_naive(adapter, states, queries)
    last = adapter.num_layers - 1
    answers = generate_ids_under_patches(adapter, queries, [None, Patch(last, states[last])], 2)
    assert len(answers) == 2 and all(len(rows) == len(queries) for rows in answers)
