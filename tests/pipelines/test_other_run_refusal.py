"""A folder that holds another run is refused with what differs, and where the options alone
differ, before the model loads (a 7B model's minute of loading is not spent on a refusal)."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers.reliability import snapshot, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.models.registry import load_model
from taskvec.pipelines import evaluate as evaluate_module
from taskvec.pipelines.evaluate import evaluate


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of a tiny model on a tiny task file: (its folder, its options)."""
    root = tmp_path_factory.mktemp("other-run")
    options = dict(tasks=[str(write_tiny_task(root / "data"))], template="spaced", seeds=[1], layers=[1])
    options |= dict(test_layers="chosen", answer_tokens=2)
    adapter = _fingerprinted(tiny_llm("llama", layers=3))
    evaluate(ExperimentConfig.create(**options), root / "run", adapter=adapter, show_progress=False)
    return root / "run", {**options, "model": adapter.name}


def _fingerprinted(tiny):
    """A tiny model as a researcher's model in memory: fingerprinted by its weights."""
    return load_model(tiny.model, tiny.tokenizer, model_name="tiny")


def _never_load(monkeypatch) -> None:
    def load(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the refusal")

    monkeypatch.setattr(evaluate_module, "load_model", load)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"answer_tokens": 3}, r"experiment.answer_tokens: 2 in the folder, 3 now\)"),
        (
            {"n_examples": 4, "template": "paper"},
            r"n_examples: 5 in the folder, 4 now; .*template: \"spaced\"",
        ),
    ],
    ids=["answer length", "examples and template"],
)
def test_other_options_are_refused_by_name_before_the_model_loads(finished, monkeypatch, change, said):
    out, options = finished
    _never_load(monkeypatch)
    before = snapshot(out)
    with pytest.raises(ConfigError, match=rf"{out.name} holds another run \(.*{said}.*choose another --out"):
        evaluate(ExperimentConfig.create(**{**options, **change}), out, show_progress=False)
    assert snapshot(out) == before


def test_other_weights_are_refused_by_name_once_loaded(finished):
    """The weights are known once the model is: the same options with another model's weights
    say which parts of the recorded model differ; another memory budget is not among them (it is
    no part of a run's identity)."""
    out, options = finished
    other = _fingerprinted(tiny_llm("llama", layers=3, seed=1))
    said = r"holds another run \(model.fingerprint: \"\w+\" in the folder, \"\w+\" now"
    with pytest.raises(ConfigError, match=said) as refused:
        config = ExperimentConfig.create(**options, memory_budget_mb=300)
        evaluate(config, out, adapter=other, show_progress=False)
    assert "memory_budget" not in str(refused.value)


def test_the_same_run_under_another_identity_says_so(finished, tmp_path):
    """A folder another taskvec wrote for these very options (its identity formula counted, say, a
    non-default memory budget) has nothing to name: the refusal says the options read the same."""
    out, options = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    recorded = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**recorded, "config_hash": "0" * 12, "lineage": "older"}))
    adapter = _fingerprinted(tiny_llm("llama", layers=3))
    said = r"\(0{12} != \w+\): what it records of its options and model reads the same, so its task data"
    with pytest.raises(ConfigError, match=said + r".*delete the folder to compute it again"):
        evaluate(ExperimentConfig.create(**options), copy, adapter=adapter, show_progress=False)


def test_a_model_described_in_other_words_is_no_difference_and_changed_task_data_is_named(finished, tmp_path):
    """A reproduction made before its task data changed was refused as another ``model.model_id``
    (the description's wording had changed too), both values cut at 40 characters, so that they
    read the same. The fingerprint says which weights; the tasks' fingerprints say which data."""
    out, options = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    recorded = json.loads((copy / "config.json").read_text())
    (task,) = recorded["tasks"]
    recorded["model"]["model_id"] = "described in the words of an older taskvec"
    recorded["tasks"][task]["fingerprint"] = "0" * 12
    (copy / "config.json").write_text(json.dumps({**recorded, "config_hash": "0" * 12, "lineage": "older"}))
    adapter = _fingerprinted(tiny_llm("llama", layers=3))
    with pytest.raises(ConfigError) as refused:
        evaluate(ExperimentConfig.create(**options), copy, adapter=adapter, show_progress=False)
    said = str(refused.value)
    assert "model_id" not in said
    assert f'tasks.{task}.fingerprint: "000000000000" in the folder, "' in said


def test_two_long_values_that_begin_alike_are_cut_where_they_differ():
    from taskvec.storage.run_folder import _briefs

    common = "EfficientNet-Lite0 encoder + entity-recognising head, "
    said = _briefs(common + "cache /old/path", common + "package 0.1.0: file")
    then, now = said.removesuffix(" now").split(" in the folder, ")
    assert then != now and then.endswith('cache /old/path"') and now.endswith('package 0.1.0: file"')
    assert _briefs(1, 2) == "1 in the folder, 2 now"
