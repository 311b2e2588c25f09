"""Options record a task file by its absolute path: one file typed three ways is one run (one
identity, one folder to resume), and a run's folder names its file from any directory."""

from __future__ import annotations

from helpers.reliability import write_task

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.evaluate import run_identity, validate_inputs


def test_one_task_file_typed_three_ways_is_one_run(tmp_path, monkeypatch):
    path = write_task(tmp_path / "tasks", "toy")
    monkeypatch.chdir(tmp_path)
    configs = [
        ExperimentConfig.create(tasks=[typed], seeds=[1])
        for typed in ("tasks/toy.json", "./tasks/../tasks/toy.json", str(path))
    ]
    assert {c.tasks[0] for c in configs} == {str(path.resolve())}
    assert len({run_identity(c, validate_inputs(c)) for c in configs}) == 1


def test_built_in_names_and_missing_paths_stay_as_typed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ExperimentConfig.create(tasks=["food_color", "country-capital"]).tasks == [
        "food_color",
        "country-capital",
    ]
    assert ExperimentConfig.create(tasks=["absent.json"]).tasks == [
        "absent.json"
    ]  # loading says it is missing
