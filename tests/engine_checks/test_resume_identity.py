"""A run folder reuses a finished unit only if it was computed under the identity asked for: a
unit stamped with another run identity (other options, task data or weights) is recomputed."""

from __future__ import annotations

import json

import pytest
from helpers.reliability import TINY, counted_units, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.evaluate import evaluate
from taskvec.storage.run_folder import RunFolder

#: a byte tokenizer's labels are not all scorable (the runs warn so); these tests read no score
pytestmark = pytest.mark.filterwarnings("ignore::taskvec.pipelines.evaluate.UnscorableLabelsWarning")


def test_a_unit_is_returned_only_for_the_identity_it_was_saved_under(tmp_path):
    """``load_unit`` given an identity returns a unit saved under that identity only: one of
    another identity is None, so a resuming run computes it again."""
    folder = RunFolder(tmp_path / "run")
    unit = {"task": "capitals", "seed": 1, "layers": [0], "val": [], "test": []}
    folder.save_unit(unit, "identity-a")
    assert folder.load_unit("capitals", 1, "identity-b") is None
    assert folder.load_unit("capitals", 1, "identity-a") == {**unit, "run_identity": "identity-a"}
    assert folder.load_unit("capitals", 1) == {**unit, "run_identity": "identity-a"}  # none asked


def test_a_resumed_run_recomputes_a_unit_of_another_identity(tmp_path, monkeypatch):
    """The unit's vector is this run's (intact, of the right identity), but the unit file says it
    was computed under another run: resuming must compute it again, not read its answers."""
    options = {**TINY, "tasks": [str(write_tiny_task(tmp_path / "data"))], "layers": [1, 2]}
    adapter, out = tiny_llm("llama", layers=3), tmp_path / "run"
    first = evaluate(ExperimentConfig.create(**options), out=out, adapter=adapter, show_progress=False)
    unit_path = first.folder.unit_path("tiny_food", 1)
    unit = json.loads(unit_path.read_text())
    unit_path.write_text(json.dumps({**unit, "run_identity": "another-run"}))

    computed = counted_units(monkeypatch)
    again = evaluate(ExperimentConfig.create(**options), out=out, adapter=adapter, show_progress=False)
    assert computed == [("tiny_food", 1)]
    assert json.loads(unit_path.read_text())["run_identity"] == unit["run_identity"]
    assert again.predictions.equals(first.predictions)
