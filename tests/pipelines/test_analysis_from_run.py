"""``taskvec analyze --run`` takes the run's tasks: a task file typed relative to the folder the run
was started in is found from anywhere (the run recorded its absolute place), and one that moved
is refused with what to do (it said "task file not found: mine.json")."""

from __future__ import annotations

import json

import pytest
from helpers.reliability import write_tiny_task

from taskvec.errors import ConfigError
from taskvec.pipelines.analyze import from_run_folder


@pytest.fixture
def run_of_a_task_file(tmp_path, monkeypatch):
    """A run folder's config.json as ``taskvec run --tasks tiny_food.json`` from ``tmp_path/work``
    records it: the task as typed, and the file's absolute place."""
    work = tmp_path / "work"
    path = write_tiny_task(work)
    run = tmp_path / "run"
    run.mkdir()
    recorded = {
        "experiment": {"model": "smollm2-135m", "tasks": [path.name, "food_color"], "seeds": [2]},
        "tasks": {"tiny_food": {"source": str(path)}, "food_color": {"source": "builtin"}},
    }
    (run / "config.json").write_text(json.dumps(recorded))
    monkeypatch.chdir(tmp_path)  # not where the run was started
    return run, path


def test_a_task_file_typed_relative_is_found_where_the_run_recorded_it(run_of_a_task_file):
    run, path = run_of_a_task_file
    config, _ = from_run_folder(run)
    assert config.tasks == [str(path), "food_color"] and config.seed == 2


def test_a_task_file_that_moved_is_refused_with_what_to_do(run_of_a_task_file, tmp_path):
    run, path = run_of_a_task_file
    path.rename(tmp_path / "moved.json")
    with pytest.raises(
        ConfigError, match=r"task file tiny_food.json of the run .* is not there \(moved\?\); .*--tasks"
    ):
        from_run_folder(run)
    config, _ = from_run_folder(run, tasks=[str(tmp_path / "moved.json")])
    assert config.tasks == [str(tmp_path / "moved.json")]


@pytest.mark.parametrize(
    ("recorded", "refusal"),
    [
        (
            {"reproduce": {}, "model": {}},
            r"is a reproduction, not a run: its analyses are in .*--run .*conditions",
        ),
        ({"analysis": {"model": "m"}}, r"is an analysis's folder \(taskvec analyze\), not a run"),
    ],
)
def test_a_folder_that_is_not_a_run_is_refused_with_what_it_is(tmp_path, recorded, refusal):
    """A reproduction's folder was read as a run of the default options, and the analysis then
    went for the reproduction's own analysis folder (refused only as "another configuration")."""
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    with pytest.raises(ConfigError, match=refusal):
        from_run_folder(tmp_path)
