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


def _complete(run, layer: int, status_layer: int | None = None) -> None:
    """The run complete, its results.json choosing ``layer`` (its status.json ``status_layer``)."""
    status = {"state": "complete", "best_layer": layer if status_layer is None else status_layer}
    (run / "status.json").write_text(json.dumps(status))
    recorded = json.loads((run / "config.json").read_text())
    results = {"config": recorded, "chosen_layer": layer, "selection_metric": "paper", "results": {}}
    (run / "results.json").write_text(json.dumps(results))


def test_the_runs_layer_comes_from_its_checked_results_not_its_status(run_of_a_task_file):
    """``analyze --run`` took the layer from status.json, which nothing checks: set to 5 by hand
    (the run chose 21), the analysis ran at 5, "chosen by the run on its validation split"."""
    run, _path = run_of_a_task_file
    _complete(run, 21, status_layer=5)
    assert from_run_folder(run)[1] == 21
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "chosen_layer": 5, "checksum": "0" * 16}))
    with pytest.raises(ConfigError, match=r"results.json is damaged \(edited since its run wrote it\)"):
        from_run_folder(run)


def test_a_task_file_typed_relative_is_found_where_the_run_recorded_it(run_of_a_task_file):
    run, path = run_of_a_task_file
    _complete(run, 21)
    config, _ = from_run_folder(run)
    assert config.tasks == [str(path), "food_color"] and config.seed == 2


def test_a_task_file_that_moved_is_refused_with_what_to_do(run_of_a_task_file, tmp_path):
    run, path = run_of_a_task_file
    _complete(run, 21)
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


def test_the_runs_layer_is_taken_only_for_its_own_model_and_tasks(run_of_a_task_file):
    """``--run R --model OTHER`` read the run's layer and called it "chosen by the run on its
    validation split": it was never chosen for that model, nor for tasks the run did not run."""
    run, path = run_of_a_task_file
    _complete(run, 7)
    assert from_run_folder(run)[1] == 7
    assert from_run_folder(run, model="smollm2-135m", tasks=["food_color", str(path)])[1] == 7
    assert from_run_folder(run, tasks=["food_color"])[1] == 7  # a part of its tasks
    assert from_run_folder(run, model="gemma3-270m")[1] is None
    assert from_run_folder(run, tasks=["food_color", "country_capital"])[1] is None


def test_the_runs_layer_is_not_taken_for_prompts_written_another_way(run_of_a_task_file):
    """``--run R --template spaced`` of a run under ``paper`` kept its layer, "chosen by the run on
    its validation split", for prompts the run never wrote. Fewer examples keep it."""
    run, _path = run_of_a_task_file
    _complete(run, 7)
    assert from_run_folder(run, template="paper", n_examples=5)[1] == 7  # the run's own (defaults)
    assert from_run_folder(run, template={"name": "paper"})[1] == 7
    assert from_run_folder(run, template="spaced")[1] is None
    assert from_run_folder(run, template={"name": "io", "input_prefix": "Input: "})[1] is None
    assert from_run_folder(run, n_examples=3)[1] == 7


def test_analyze_of_a_run_loads_the_model_in_the_runs_dtype(run_of_a_task_file, monkeypatch):
    """``analyze --run`` of a bfloat16 run loaded the model in float32 (``--dtype``'s default)."""
    from typer.testing import CliRunner

    from taskvec.cli import app

    run, _path = run_of_a_task_file
    recorded = json.loads((run / "config.json").read_text())
    recorded["model"] = {"numerics": "bfloat16"}
    (run / "config.json").write_text(json.dumps(recorded))
    seen = []

    def analysing(*_args, load_options, **_options):
        seen.append(load_options.dtype)
        raise ConfigError("stopped here")

    monkeypatch.setattr("taskvec.pipelines.analyze.run_analysis", analysing)
    CliRunner().invoke(app, ["analyze", "--run", str(run)])
    CliRunner().invoke(app, ["analyze", "--run", str(run), "--dtype", "float32"])
    assert seen == ["bfloat16", "float32"]


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ({"state": "running"}, r"stopped part-way .*: run its command again to complete it; or give"),
        ({}, r"has not finished \(it has no status.json\).*; or give the analysis its layer \(--layer\)"),
    ],
)
def test_a_run_that_has_not_finished_is_refused_unless_the_layer_is_given(
    run_of_a_task_file, status, said, monkeypatch
):
    """``analyze --run`` of a run still computing or stopped part-way went on at a layer of its
    own (the task phase's peak), silently: the run had chosen none yet. Refused before the model
    loads."""
    from taskvec.pipelines import analyze as pipeline

    run, _path = run_of_a_task_file
    if status:
        (run / "status.json").write_text(json.dumps(status))  # running, no command holds it: stopped

    def loading(*_args, **_kwargs):
        raise LookupError("the model loads")

    monkeypatch.setattr(pipeline, "load_model", loading)
    monkeypatch.setattr(pipeline, "fingerprint_before_loading", lambda *_args: None)
    with pytest.raises(ConfigError, match=said):
        pipeline.run_analysis(run)
    with pytest.raises(LookupError, match="the model loads"):  # given its layer, it goes on
        pipeline.run_analysis(run, layer=3)
