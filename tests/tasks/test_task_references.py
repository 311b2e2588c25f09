"""A run's options keep its task files as typed, so a folder moved with its task files (a copied
project) still resumes; one file named twice in two spellings is refused; and a task records its
file's absolute place, so ``taskvec verify`` finds it from any directory."""

from __future__ import annotations

import pytest
from helpers.reliability import write_task

from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.evaluate import run_identity, validate_inputs
from taskvec.tasks.registry import load_task


def test_a_run_of_relative_task_files_has_one_identity_wherever_its_project_lies(tmp_path, monkeypatch):
    identities = []
    for project in (tmp_path / "here", tmp_path / "moved"):
        write_task(project / "tasks", "toy")
        monkeypatch.chdir(project)
        config = ExperimentConfig.create(tasks=["tasks/toy.json"], seeds=[1])
        assert config.tasks == ["tasks/toy.json"]
        identities.append(run_identity(config, validate_inputs(config)))
    assert identities[0] == identities[1]


def test_one_task_file_in_two_spellings_is_listed_twice(tmp_path, monkeypatch):
    path = write_task(tmp_path / "tasks", "toy")
    monkeypatch.chdir(tmp_path)
    for spelling in ("./tasks/../tasks/toy.json", str(path)):
        with pytest.raises(ConfigError, match="a task is listed twice"):
            ExperimentConfig.create(tasks=["tasks/toy.json", spelling])
    with pytest.raises(ConfigError, match="a task is listed twice"):
        ExperimentConfig.create(tasks=["country_capital", "country-capital"])


def test_a_task_records_its_files_absolute_place(tmp_path, monkeypatch):
    path = write_task(tmp_path / "tasks", "toy")
    monkeypatch.chdir(tmp_path)
    assert load_task("tasks/toy.json").source == str(path.resolve())


def test_all_is_the_six_built_in_tasks_in_the_library_as_on_the_command_line():
    """``taskvec run --tasks all`` ran the six; ``ExperimentConfig.create(tasks=["all"])`` failed
    later as an unknown task 'all'. Both give the same options, so the same run identity."""
    from taskvec.pipelines.analyze import AnalysisConfig
    from taskvec.pipelines.reproduce import ReproduceConfig
    from taskvec.tasks.registry import BUILTIN_TASKS, resolve_task_names

    for options in (ExperimentConfig, AnalysisConfig, ReproduceConfig):
        assert options.create(tasks=["all"]).tasks == list(BUILTIN_TASKS) == resolve_task_names(["all"])
    with pytest.raises(ConfigError, match=r"a task is listed twice: \['food_color'\]"):
        ExperimentConfig.create(tasks=["all", "food_color"])
