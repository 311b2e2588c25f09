"""Before any forward pass: a text-only model asked for image queries is told which model can
read them, and a memory budget some single prompt cannot fit in some step is refused."""

from __future__ import annotations

import json
import warnings

import pytest
from helpers.reliability import write_task, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.config import DEFAULT_VLM
from taskvec.errors import ConfigError, MemoryBudgetError
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts
from taskvec.models.batching import MemoryBudget, token_counts
from taskvec.pipelines.evaluate import check_memory_budget, check_model_fits, evaluate
from taskvec.tasks.registry import load_task


def test_image_queries_on_a_text_model_name_a_model_that_reads_images():
    config = ExperimentConfig.create(model="tiny", tasks=["country_capital"], query="image")
    with pytest.raises(ConfigError, match=f"is text-only.*--model {DEFAULT_VLM}"):
        check_model_fits(tiny_llm("llama"), config)


def test_a_text_only_model_asked_for_pictures_is_refused_before_it_loads(tmp_path, monkeypatch):
    """By its name (a named model) or its folder's config (a saved text family): run, analyze and
    reproduce refuse it before spending the load on it."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from taskvec.models.registry import sees_images
    from taskvec.pipelines.analyze import run_analysis
    from taskvec.pipelines.reproduce import ReproduceConfig, reproduce

    def never(*_args, **_kwargs):
        raise AssertionError("the model was loaded")

    for module in ("evaluate", "analyze", "reproduce"):
        monkeypatch.setattr(f"taskvec.pipelines.{module}.load_model", never)
    folder = tmp_path / "llama"
    tiny = LlamaConfig(
        hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, vocab_size=16
    )
    LlamaForCausalLM(tiny).save_pretrained(folder)
    assert not sees_images("smollm2-135m") and not sees_images(str(folder)) and sees_images(DEFAULT_VLM)
    for model in ("smollm2-135m", str(folder)):
        config = ExperimentConfig.create(model=model, tasks=["food_color"], query="image")
        with pytest.raises(ConfigError, match="is text-only, but spec 'text-icl' / query 'image'"):
            evaluate(config, tmp_path / "run", show_progress=False)
        with pytest.raises(ConfigError, match="is text-only; drop image-icl"):
            run_analysis(out=tmp_path / "analysis", model=model, tasks=["food_color"], specs=["image-icl"])
        with pytest.raises(ConfigError, match="is text-only; `taskvec reproduce` needs"):
            reproduce(ReproduceConfig.create(model=model, quick=True), tmp_path / "reproduce")


def test_a_layer_the_saved_model_lacks_is_refused_before_it_loads(tmp_path, monkeypatch):
    """Its config says how many decoder layers it has (a VLM's text part): run and analyze refuse
    a layer out of range without loading the weights; a layer in range goes on to load."""
    from taskvec.errors import LayerError
    from taskvec.pipelines.analyze import run_analysis

    class Loaded(Exception):
        pass

    def loaded(*_args, **_kwargs):
        raise Loaded

    for module in ("evaluate", "analyze"):
        monkeypatch.setattr(f"taskvec.pipelines.{module}.load_model", loaded)
    folder = tmp_path / "model"
    llm = tiny_llm("llama", layers=3)
    llm.model.save_pretrained(folder)
    llm.tokenizer.save_pretrained(folder)
    out_of_range = r"layer 3 is out of range for .*model: it has decoder layers 0..2"
    config = ExperimentConfig.create(model=str(folder), tasks=["food_color"], layers=[1, 3])
    with pytest.raises(LayerError, match=out_of_range):
        evaluate(config, tmp_path / "run", show_progress=False)
    with pytest.raises(LayerError, match=out_of_range):
        run_analysis(out=tmp_path / "analysis", model=str(folder), tasks=["food_color"], decode_layers=[3])
    with pytest.raises(Loaded):
        evaluate(config.model_copy(update={"layers": [2]}), tmp_path / "run", show_progress=False)


def _budget_mb(adapter, tokens: float) -> float:
    """The budget whose ``max_tokens`` is ``tokens`` (half a token more, against rounding)."""
    return (tokens + 0.5) * MemoryBudget().token_bytes(adapter) / (1 << 20)


def test_a_budget_one_forward_pass_fits_but_the_answers_do_not_is_refused_before_any_forward_pass():
    """The extraction prompts fit ``max_tokens``, but a greedy answer of 4 tokens may hold only a
    quarter of it: the xBase prompts do not fit. Refused with the options, not minutes later."""
    adapter = tiny_llm("llama")
    task = load_task("country_capital")
    config = ExperimentConfig.create(model="tiny", tasks=["country_capital"], seeds=[1], answer_tokens=4)
    prompts = UnitPrompts(task, config, 1)
    longest = max(token_counts(adapter, [*prompts.extraction, *prompts.test_base]))
    tight = config.model_copy(update={"memory_budget_mb": _budget_mb(adapter, longest)})
    assert tight.budget(adapter).max_tokens(adapter) == longest  # one forward pass of each prompt fits
    with pytest.raises(
        MemoryBudgetError,
        match=r"'country_capital': its longest xBase prompt \(\d+ tokens\) answered .*or lower --n-examples "
        r"or lower --answer-tokens$",
    ):
        check_memory_budget(adapter, [task], tight)
    roomy = config.model_copy(update={"memory_budget_mb": _budget_mb(adapter, 4 * longest)})
    check_memory_budget(adapter, [task], roomy)  # an answer's share of it holds every prompt


def test_the_check_asks_the_sweeps_own_cost_of_a_query(monkeypatch):
    """The layer sweep plans its batches by ``MemoryBudget.sweep_query_bytes``; a query that cost
    says is too big alone is refused by the check, before any forward pass. (On a tiny model the
    answers' share binds first; the sweep binds where a model's vocabulary is large for its width.)"""
    adapter = tiny_llm("llama")
    task = load_task("country_capital")
    config = ExperimentConfig.create(model="tiny", tasks=["country_capital"], seeds=[1])
    check_memory_budget(adapter, [task], config)
    monkeypatch.setattr(MemoryBudget, "sweep_query_bytes", lambda self, adapter, length, rows: self.bytes + 1)
    with pytest.raises(  # no fewer examples: a query holds none (that was the only cure said)
        MemoryBudgetError,
        match=rf"query \(\d+ tokens\) swept over {adapter.num_layers} layers.* or fewer --layer$",
    ):
        check_memory_budget(adapter, [task], config)


def test_a_model_given_in_memory_names_its_run_unless_the_options_name_another(tmp_path):
    """``evaluate(config, adapter=...)``: the run records the given model's name, not the options'
    default; options that name another model are refused before the folder is written."""
    adapter = tiny_llm("llama")
    task = str(write_tiny_task(tmp_path / "tasks", val=4, test=2))
    options = dict(tasks=[task], seeds=[1], layers=[1], n_examples=2, answer_tokens=1, test_layers="chosen")
    result = evaluate(
        ExperimentConfig.create(**options), tmp_path / "run", adapter=adapter, show_progress=False
    )
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    assert recorded["experiment"]["model"] == adapter.name == result.config.model
    with pytest.raises(
        ConfigError, match=f"the options name model 'smollm2-135m', but the model given is '{adapter.name}'"
    ):
        evaluate(
            ExperimentConfig.create(model="smollm2-135m", **options), tmp_path / "other", adapter=adapter
        )
    assert not (tmp_path / "other").exists()


def test_an_analysis_and_a_reproduction_of_a_model_in_memory_are_named_after_it(tmp_path):
    from taskvec.pipelines.analyze import AnalysisConfig, analyze, run_analysis
    from taskvec.pipelines.reproduce import ReproduceConfig, reproduce

    adapter = tiny_llm("llama")
    result = run_analysis(
        out=tmp_path / "analysis", adapter=adapter, tasks=["food_color"], specs=["text-icl"], prompts=2,
        lens_prompts=1, extraction_prompts=3, embeddings=["pca"], n_examples=2,
    )  # fmt: skip
    recorded = json.loads((result.folder.root / "config.json").read_text())
    assert recorded["analysis"]["model"] == adapter.name
    with pytest.raises(
        ConfigError, match=f"the options name model 'gemma3-270m', but the model given is '{adapter.name}'"
    ):
        run_analysis(out=tmp_path / "other", adapter=adapter, model="gemma3-270m", tasks=["food_color"])
    with pytest.raises(
        ConfigError, match=f"the options name model 'embedded-vlm', but the model given is '{adapter.name}'"
    ):
        reproduce(ReproduceConfig.create(model="embedded-vlm", quick=True), tmp_path / "r", adapter=adapter)
    with pytest.raises(ConfigError, match="the options name model 'gemma3-270m'"):
        analyze(adapter, AnalysisConfig.create(model="gemma3-270m", tasks=["food_color"]), tmp_path / "a")
    # a run folder of another model: its options name that model
    run_folder = tmp_path / "run-of-another-model"
    run_folder.mkdir()
    (run_folder / "config.json").write_text(json.dumps({"experiment": {"model": "smollm2-135m"}}))
    with pytest.raises(ConfigError, match="the options name model 'smollm2-135m'"):
        run_analysis(run=run_folder, adapter=adapter)
    unwritten = ("other", "r", "a", "run-of-another-model/analysis")
    assert not any((tmp_path / name).exists() for name in unwritten)


def test_an_llm_whose_vectors_do_not_fit_the_vlm_is_refused_before_the_first_stage(tmp_path, monkeypatch):
    """``reproduce --llm`` of another depth or width failed in Table 4, after the whole matrix of
    conditions (17 minutes of the embedded VLM's reproduction)."""
    from helpers.families.llava import build_llava
    from helpers.tinyparts import make_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    from taskvec.errors import VectorMismatchError
    from taskvec.pipelines.reproduce import ReproduceConfig, Reproduction, reproduce

    def never(self):
        raise AssertionError("the matrix of conditions ran")

    monkeypatch.setattr(Reproduction, "run_matrix", never)
    folder = tmp_path / "llama"
    narrow = LlamaConfig(
        hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, vocab_size=16
    )
    LlamaForCausalLM(narrow).save_pretrained(folder)
    make_tokenizer([]).save_pretrained(folder)
    vlm = build_llava()
    config = ReproduceConfig.create(model=vlm.name, llm=str(folder), tasks=["food_color"], quick=True)
    with pytest.raises(VectorMismatchError, match="do not fit .* LLM -> VLM transfer needs the same depth"):
        reproduce(config, tmp_path / "reproduce", adapter=vlm, show_progress=False)
    assert not (tmp_path / "reproduce").exists()


def test_a_reproduction_of_a_task_without_pictures_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    """Its first condition (text examples, text queries) ran, then the first image condition
    failed; every task's pictures are checked, in every style, before anything loads."""
    from taskvec.errors import ImageError
    from taskvec.pipelines.reproduce import ReproduceConfig, reproduce

    def never(*_args, **_kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("taskvec.pipelines.reproduce.load_model", never)
    items = [{key: value for key, value in item.items() if key != "entity"} for item in _food_items()]
    text_only = write_task(
        tmp_path / "tasks", "tiny_food", instruction="colour:", val=items[:7], test=items[7:10]
    )
    config = ReproduceConfig.create(tasks=["food_color", str(text_only)], quick=True)
    with pytest.raises(ImageError, match="task 'tiny_food': item .* has no 'image'"):
        reproduce(config, tmp_path / "reproduce", show_progress=False)
    assert not (tmp_path / "reproduce").exists()


def _food_items() -> list[dict]:
    from taskvec.tasks.registry import builtin_task_path

    return json.loads(builtin_task_path("food_color").read_text())["val"]


def test_a_picture_the_models_processor_refuses_is_named_before_any_forward_pass(tmp_path):
    """Qwen2-VL's processor refuses an aspect ratio over 200: the picture is named, with the
    processor's reason, before the run writes a unit, not as a traceback half-way."""
    from helpers.families import CASES
    from PIL import Image

    from taskvec.errors import ImageError

    (qwen,) = [case for case in CASES if case.model_type == "qwen2_vl"]
    folder = tmp_path / "tasks"
    folder.mkdir()
    items = []
    for k in range(6):
        size = (1000, 3) if k == 4 else (20 + k, 20)
        Image.new("RGB", size, (40 * k, 0, 0)).save(folder / f"p{k}.png")
        items.append({"id": f"i{k}", "input": f"thing {k}", "output": f"label {k}", "image": f"p{k}.png"})
    task = folder / "strip.json"
    record = {"name": "strip", "instruction": "The label:", "val": items[:4], "test": items[4:]}
    task.write_text(json.dumps(record))
    options = dict(tasks=[str(task)], seeds=[1], layers=[1], n_examples=2, answer_tokens=1, query="image")
    config = ExperimentConfig.create(**options, test_layers="chosen")
    with pytest.raises(ImageError, match=r"item 'i4': .* processor refuses .*p4.png \(absolute aspect ratio"):
        evaluate(config, tmp_path / "run", adapter=qwen.build(), show_progress=False)
    assert not list((tmp_path / "run").glob("units/*"))


def test_vectors_of_a_model_that_tokenizes_otherwise_are_warned_of():
    """Depth and width alone let any LLM of the VLM's shape lend it vectors; one that writes the
    same text in other tokens is likely not the VLM's base LLM: warned, not refused."""
    from helpers.tinyparts import make_tokenizer

    from taskvec.models.families.causal_lm import CausalLMAdapter
    from taskvec.pipelines.evaluate import ForeignVectorsWarning, check_vectors_fit

    vlm_side, llm = tiny_llm("llama", seed=1), tiny_llm("llama", seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_vectors_fit(llm, vlm_side)  # the same tokens: silent
    other = CausalLMAdapter(llm.model, make_tokenizer(["Paris"]), name="other", model_id="other")
    with pytest.warns(ForeignVectorsWarning, match="other writes text in other tokens than"):
        check_vectors_fit(other, vlm_side)
