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
    with pytest.raises(ConfigError, match=r"whose options, model and data read the same \(another taskvec"):
        evaluate(ExperimentConfig.create(**options), copy, adapter=adapter, show_progress=False)
