"""The embedded VLM with its shipped weights: it loads, it sees, it is the LLM on text.

Slow tests: they load the real SmolLM2 backbone and the shipped recogniser and projector.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from taskvec.align.evaluate import check_sample_accuracy
from taskvec.errors import ModelSpecError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.experiments.conditions import Condition
from taskvec.models.embedded.load import BACKBONES, RECOGNISER_FILE, load_embedded_vlm, projector_file
from taskvec.models.embedded.weights import WEIGHTS_DIR
from taskvec.models.families.causal_lm import CausalLMAdapter
from taskvec.models.registry import LoadOptions, load_model, sees_images
from taskvec.models.shared_work import SharedWork
from taskvec.patching.patch import first_token_ids, generate_ids
from taskvec.patching.shared_prefix import generate_ids_after_prefixes
from taskvec.patching.sweep import sweep, sweep_naive
from taskvec.pipelines.evaluate import evaluate
from taskvec.pipelines.reproduce import ReproduceConfig, Reproduction, quick_task_files, run_conditions
from taskvec.prompts.template import get_template
from taskvec.storage.run_folder import RunFolder
from taskvec.tasks.images import load_image
from taskvec.vectors.extract import last_token_states

pytestmark = pytest.mark.slow

FRANCE, DOG = "1f1eb-1f1f7", "1f415"


@pytest.fixture(scope="module", params=["gemma3", "smollm2"])
def backbone(request):
    """Both shipped backbones (Gemma 3 is the default ``embedded-vlm``)."""
    return request.param


@pytest.fixture(scope="module")
def vlm(backbone):
    return load_embedded_vlm(backbone)


def test_shipped_weights_reproduce_the_recorded_recognition_sample(vlm, backbone):
    sidecar = WEIGHTS_DIR / f"{projector_file(backbone)}.json"
    recorded = json.loads(sidecar.read_text())["check_sample"]
    assert check_sample_accuracy(vlm) == recorded


def test_the_named_models_declare_whether_they_take_pictures_as_their_adapters_do(vlm, backbone):
    """``sees_images`` answers from the named models' declarations before loading: they must say
    what the loaded adapters say (the VLM, and its base LLM, a named text model)."""
    assert sees_images(f"embedded-vlm-{backbone}") is vlm.supports_images is True
    base = vlm.base_language_model()
    assert sees_images(base.name) is base.adapter.supports_images is False


def test_the_vlm_declares_its_base_language_model(vlm, backbone):
    """LLM -> VLM transfer reads the base LLM from the adapter's hook, not by probing attributes."""
    base = vlm.base_language_model()
    assert base.adapter is vlm.text_adapter
    assert base.name == vlm.base_llm == BACKBONES[backbone].llm
    assert base.frozen and vlm.language_model_is_frozen
    assert vlm.recognition() is not None
    assert vlm.text_adapter.base_language_model() is None  # a plain LLM knows of none
    assert vlm.text_adapter.recognition() is None  # nor of pictures it names


def test_text_prompts_run_exactly_as_in_the_bare_llm(vlm):
    """The language model is frozen and shared: on text, the VLM is the LLM."""
    llm = CausalLMAdapter(vlm.model.llm, vlm.tokenizer, name="bare", model_id="bare")
    template = get_template("spaced")
    prompts = [template.icl([("France", "Paris")], "Japan"), template.query("Peru")]
    vlm_inputs, llm_inputs = vlm.encode(prompts), llm.encode(prompts)
    assert torch.equal(vlm_inputs.input_ids, llm_inputs.input_ids)
    torch.testing.assert_close(vlm.forward(vlm_inputs).logits, llm.forward(llm_inputs).logits)


def test_on_text_the_vlm_computes_like_its_language_models_adapter(vlm):
    """What lets shared work (and Table 4) treat the VLM's text runs as its LLM's: the delimiter
    states and greedy answers of text prompts are bit-identical through either adapter; a prompt
    with an image is the VLM's own."""
    llm = vlm.text_adapter
    template = get_template("spaced")
    text = [template.icl([("France", "Paris"), ("Peru", "Lima")], "Japan"), template.query("Chile")]
    assert vlm.computes_like(text) is llm
    assert vlm.computes_like([template.query(load_image(DOG, "noto"))]) is vlm
    assert torch.equal(last_token_states(vlm, text), last_token_states(llm, text))
    assert generate_ids(vlm, text, None, 3) == generate_ids(llm, text, None, 3)
    # where the weights come from, as reports and vector files record it: the parts and the LLM's file
    assert vlm.model_id.startswith("EfficientNet-Lite0") and vlm.model_id.endswith(f" on {llm.model_id}")


def test_llm_to_vlm_runs_reuse_the_vlm_runs_outright(vlm, tmp_path):
    """With one ``SharedWork``, the LLM -> VLM run after the VLM -> VLM run computes nothing: same
    vectors, sweeps and answers, so the same predictions."""
    tasks = quick_task_files(["country_capital"], tmp_path)
    config = ExperimentConfig(
        model=vlm.name,
        tasks=tasks,
        spec="text-icl",
        query="image",
        seeds=[1],
        layers=[9, 11],
        answer_tokens=2,
    )
    shared = SharedWork()
    own = evaluate(config, tmp_path / "vlm", vlm, show_progress=False, shared=shared)
    computed = shared.computed
    transfer = evaluate(
        config, tmp_path / "llm", vlm, show_progress=False, vector_adapter=vlm.text_adapter, shared=shared
    )
    assert shared.computed == computed and shared.reused >= 5
    columns = ["item", "method", "prediction", "answer"]
    assert transfer.predictions[columns].equals(own.predictions[columns])


def test_prompts_sharing_their_examples_answer_as_whole_prompts(vlm):
    """xBase of conditions with the same examples (text or picture demonstrations, text or
    picture queries): the examples run once, the answers are those of the whole prompts."""
    template = get_template("spaced")
    france, peru, dog = (load_image(e, "noto") for e in (FRANCE, "1f1f5-1f1ea", DOG))
    text_demos = [("France", "Paris"), ("Peru", "Lima")]
    image_demos = [(france, "Paris"), (peru, "Lima")]
    prefixes = [template.examples(text_demos), template.examples(image_demos)]
    prompts = [
        [template.icl(text_demos, "Japan"), template.icl(text_demos, france), template.icl(text_demos, dog)],
        [template.icl(image_demos, france), template.icl(image_demos, "Chile")],
    ]
    shared = generate_ids_after_prefixes(vlm, prefixes, prompts, 3)
    assert shared == [generate_ids(vlm, group, None, 3) for group in prompts]


def test_a_reproduction_runs_shared_examples_once_with_the_answers_of_separate_runs(vlm, tmp_path):
    """Text ICL -> text and -> image put the same examples before their queries: in a
    reproduction one computation answers both conditions' xBase prompts, and the units are those
    of separate runs."""
    config = ReproduceConfig.create(model=vlm.name, quick=True, tasks=["country_capital"])
    reproduction = Reproduction(vlm, config, tmp_path / "together", show_progress=False)
    reproduction.start()
    conditions = [Condition("text-icl", "text"), Condition("text-icl", "image", "noto")]
    reproduction.share_demonstrations(conditions)
    options = reproduction.run_options()
    together = run_conditions(vlm, conditions, tmp_path / "together", False, reproduction.shared, **options)
    # the second condition's xBase answers were handed over, not computed again
    assert reproduction.shared.tally[("greedy answers", "reused")] >= 1
    for condition in conditions:
        alone = run_conditions(vlm, [condition], tmp_path / condition.name, False, None, **options)[condition]

        def unit(result):
            return RunFolder(result.folder.root).load_unit("country_capital", 1)

        assert unit(together[condition])["test"] == unit(alone)["test"]


def test_each_image_becomes_its_slots_and_identical_pictures_are_encoded_once(vlm):
    template = get_template("spaced")
    flag, dog = load_image(FRANCE, "noto"), load_image(DOG, "noto")
    encoded = vlm.encode([template.icl([(flag, "France")], dog), template.query(flag.copy())])
    slots = (encoded.input_ids == vlm.model.image_token_id).sum(-1)
    assert slots.tolist() == [2 * vlm.tokens_per_image, vlm.tokens_per_image]
    image_embeds = encoded.extra["image_embeds"]  # [3 images, K, hidden]
    torch.testing.assert_close(image_embeds[0], image_embeds[2])  # the same flag twice
    assert not torch.allclose(image_embeds[0], image_embeds[1])


def test_a_pictures_tokens_do_not_depend_on_the_pictures_encoded_before_or_beside_it(vlm):
    """The adapter keeps each picture's tokens for the process; were they computed in a batch, they
    would round by its batch, and a run's numbers would depend on what ran before it (a resumed
    run, or another rank, would differ in the last bits)."""
    pictures = [load_image(entity, style) for entity in (FRANCE, DOG) for style in ("noto", "twemoji")]
    vlm.clear_image_cache()
    beside = vlm.image_embeds(pictures)
    vlm.clear_image_cache()
    alone = torch.stack([vlm.image_embeds([picture])[0] for picture in reversed(pictures)])
    vlm.clear_image_cache()
    assert torch.equal(beside, alone.flip(0))


def test_fast_sweep_equals_the_naive_sweep_on_image_queries(vlm):
    template = get_template("spaced")
    queries = [template.query(load_image(e, "twemoji")) for e in (FRANCE, DOG)]
    layers = [3, vlm.num_layers // 2, vlm.num_layers - 1]
    vectors = torch.randn(len(layers), vlm.hidden_size) * 4
    fast, naive = sweep(vlm, queries, vectors, layers), sweep_naive(vlm, queries, vectors, layers)
    assert torch.equal(fast.patched, naive.patched) and torch.equal(fast.clean, naive.clean)


def test_an_image_query_names_what_it_shows(vlm):
    template = get_template("spaced")
    [token] = first_token_ids(vlm, [template.query(load_image(DOG, "noto"))])
    assert "dog" in vlm.decode([token]).lower()


def test_the_projector_runs_on_its_llm_weights_in_bfloat16_under_their_own_identity(vlm, backbone):
    """A projector is bound to its LLM's weights, not their precision; bfloat16 numbers are told
    apart from float32 ones by the fingerprint."""
    half = load_model(f"embedded-vlm-{backbone}", LoadOptions(dtype="bfloat16"))
    assert half.fingerprint == f"{vlm.fingerprint}@bfloat16"
    assert half.text_adapter.weights_fingerprint == vlm.text_adapter.weights_fingerprint
    assert all(p.dtype == torch.bfloat16 for p in half.layers.parameters())
    [token] = first_token_ids(half, [get_template("spaced").query(load_image(DOG, "noto"))])
    assert "dog" in half.decode([token]).lower()


def test_weights_that_do_not_match_their_record_are_refused(tmp_path):
    for name in (RECOGNISER_FILE, projector_file("smollm2")):
        for suffix in (".safetensors", ".json"):
            shutil.copy(WEIGHTS_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    sidecar = tmp_path / f"{projector_file('smollm2')}.json"
    info = json.loads(sidecar.read_text())
    info["config"]["steps"] += 1  # a config the file was not trained with
    sidecar.write_text(json.dumps(info))
    with pytest.raises(ModelSpecError, match="does not match its hash"):
        load_embedded_vlm("smollm2", weights_dir=tmp_path)
    with open(tmp_path / f"{RECOGNISER_FILE}.safetensors", "r+b") as handle:
        handle.seek(-16, 2)
        handle.write(b"\0" * 16)
    with pytest.raises(ModelSpecError, match="checksum"):
        load_embedded_vlm("smollm2", weights_dir=tmp_path)


@pytest.mark.parametrize(
    ("stem", "edit"),
    [
        # two entities swapped: France's flag would answer the other country, same fingerprint
        (RECOGNISER_FILE, lambda info: info["entity_ids"].insert(1, info["entity_ids"].pop(0))),
        (projector_file("smollm2"), lambda info: info.pop("llm_fingerprint")),
    ],
    ids=["entity_ids swapped", "llm_fingerprint removed"],
)
def test_an_edited_field_that_loading_uses_is_refused_before_the_llm_loads(tmp_path, stem, edit):
    for name in (RECOGNISER_FILE, projector_file("smollm2")):
        for suffix in (".safetensors", ".json"):
            shutil.copy(WEIGHTS_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    sidecar = tmp_path / f"{stem}.json"
    info = json.loads(sidecar.read_text())
    edit(info)
    sidecar.write_text(json.dumps(info))
    with pytest.raises(ModelSpecError, match=r"do not match their hash \(the file was edited\)"):
        load_embedded_vlm("smollm2", weights_dir=tmp_path)


def test_unknown_backbone_is_refused():
    with pytest.raises(ModelSpecError, match="unknown embedded-VLM backbone"):
        load_embedded_vlm("gpt5")
