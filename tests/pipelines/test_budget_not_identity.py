"""The memory budget decides how many prompts share a batch, not what a prompt computes: a run
interrupted under one budget (a GPU that ran out of memory) resumes under a lower one, keeping its
finished units, and what was computed under the default budget keeps its identity."""

from __future__ import annotations

import json

import pytest
from helpers.reliability import TINY, counted_units, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.models.batching import MemoryBudget
from taskvec.pipelines.analyze import AnalysisConfig, analyze
from taskvec.pipelines.evaluate import default_run_dir, evaluate, run_identity, unit_identity
from taskvec.pipelines.reproduce import ReproduceConfig
from taskvec.tasks.task import load_task_file


def test_a_run_stopped_under_one_budget_resumes_under_a_lower_one(tmp_path, monkeypatch):
    task = str(write_tiny_task(tmp_path / "data"))
    adapter = tiny_llm("llama", layers=3)
    options = {**TINY, "tasks": [task], "seeds": [1, 2], "layers": [1]}
    out = tmp_path / "run"
    with monkeypatch.context() as killed:
        counted_units(killed, stop_after=1)
        with pytest.raises(KeyboardInterrupt):
            evaluate(ExperimentConfig.create(**options), out, adapter=adapter, show_progress=False)
    computed = counted_units(monkeypatch)
    lower = ExperimentConfig.create(**options, memory_budget_mb=1.0)  # about two prompts a batch
    result = evaluate(lower, out, adapter=adapter, show_progress=False)
    assert computed == [("tiny_food", 2)]  # seed 1's unit, finished under the default budget, is kept
    assert result.folder.is_complete()
    assert json.loads((out / "status.json").read_text())["memory_budget_mb"] == 1.0
    # the same answers as one uninterrupted run under the default budget
    whole = evaluate(
        ExperimentConfig.create(**options), tmp_path / "whole", adapter=adapter, show_progress=False
    )
    columns = ["task", "seed", "item", "method", "prediction"]
    assert result.predictions[columns].equals(whole.predictions[columns])


def test_identities_count_the_budget_as_its_default(tmp_path):
    task = load_task_file(write_tiny_task(tmp_path / "data"))
    default = ExperimentConfig.create(**{**TINY, "tasks": [task.source]})
    lower = default.model_copy(update={"memory_budget_mb": 1.0})
    assert run_identity(lower, [task], "w") == run_identity(default, [task], "w")
    assert unit_identity(lower, task, "w") == unit_identity(default, task, "w")
    assert default_run_dir(lower, [task]) == default_run_dir(default, [task])
    # and what a folder records is still the budget each launch used
    assert lower.for_identity().memory_budget_mb == 1024 and lower.memory_budget_mb == 1.0
    # the control: an option that changes what is computed changes the identity
    other = default.model_copy(update={"n_examples": 4})
    assert run_identity(other, [task], "w") != run_identity(default, [task], "w")
    for options in (ReproduceConfig, AnalysisConfig):
        config = options.create()
        assert config.memory_budget_mb is None  # sized to the device once the model loads
        assert config.model_copy(update={"memory_budget_mb": 9.0}).for_identity() == config.for_identity()
        assert config.for_identity().memory_budget_mb == 1024


def _sized_once(monkeypatch, megabytes: float) -> list:
    """``MemoryBudget.for_model`` as if the model's device had room for ``megabytes``; the
    models it is asked about are listed."""
    asked = []

    def sized(adapter):
        asked.append(adapter)
        return MemoryBudget.from_mb(megabytes)

    monkeypatch.setattr(MemoryBudget, "for_model", staticmethod(sized))
    return asked


def test_a_run_without_a_budget_sizes_one_once_and_records_it(tmp_path, monkeypatch):
    task = str(write_tiny_task(tmp_path / "data"))
    adapter = tiny_llm("llama", layers=3)
    options = {**TINY, "tasks": [task], "seeds": [1, 2], "layers": [1]}
    given = evaluate(
        ExperimentConfig.create(**options, memory_budget_mb=1.0),
        tmp_path / "given",
        adapter=adapter,
        show_progress=False,
    )
    asked = _sized_once(monkeypatch, 1.0)
    sized = evaluate(
        ExperimentConfig.create(**options), tmp_path / "sized", adapter=adapter, show_progress=False
    )
    assert asked == [adapter]  # once for the whole run: every batch planned by one budget
    assert json.loads((tmp_path / "sized" / "status.json").read_text())["memory_budget_mb"] == 1.0
    assert sized.config.memory_budget_mb == 1.0
    columns = ["task", "seed", "item", "method", "prediction"]
    assert sized.predictions[columns].equals(given.predictions[columns])
    # a given budget is used as given
    evaluate(
        ExperimentConfig.create(**options, memory_budget_mb=2.0),
        tmp_path / "two",
        adapter=adapter,
        show_progress=False,
    )
    assert asked == [adapter]
    assert json.loads((tmp_path / "two" / "status.json").read_text())["memory_budget_mb"] == 2.0


def test_an_analysis_without_a_budget_sizes_one_once(tmp_path, monkeypatch):
    adapter = tiny_llm("llama", layers=3)
    asked = _sized_once(monkeypatch, 3.0)
    config = AnalysisConfig.create(
        model=adapter.name,
        tasks=["food_color"],
        specs=["text-icl"],
        template="spaced",
        n_examples=2,
        prompts=3,
        lens_prompts=2,
        extraction_prompts=2,
        top_k=2,
        embeddings=["pca"],
    )
    analyze(adapter, config, tmp_path / "analysis")
    assert asked == [adapter]
    recorded = json.loads((tmp_path / "analysis" / "config.json").read_text())["analysis"]
    assert recorded["memory_budget_mb"] == 3.0
