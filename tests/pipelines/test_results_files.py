"""A run's results as other tools load them: results.json (config, versions, chosen layer,
mean / std / n per task and method, no times), a tidy long CSV, predictions.jsonl rows that say
which model, spec, query, style and layer they came from, and taskvec.load_run."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers.reliability import TINY, write_tiny_task
from helpers.tinyllm import tiny_llm

import taskvec
from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.evaluate import evaluate
from taskvec.pipelines.results import metric_summary
from taskvec.report.tables import write_run_report
from taskvec.storage.run_folder import RunFolder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    task = write_tiny_task(root / "data")
    adapter = tiny_llm("llama", layers=3)
    config = ExperimentConfig.create(**{**TINY, "layers": None, "tasks": [str(task)], "seeds": [1, 2]})
    first = evaluate(config, root / "one", adapter=adapter, show_progress=False)
    second = evaluate(config, root / "two", adapter=adapter, show_progress=False)
    return first, second


def test_results_json_holds_config_versions_layer_and_metrics_without_times(runs):
    first, second = runs
    results = json.loads((first.folder.root / "results.json").read_text())
    assert results["chosen_layer"] == first.best_layer
    assert results["config"]["experiment"]["seeds"] == [1, 2]
    assert set(results["versions"]) >= {"torch", "transformers", "taskvec"}
    entry = results["results"]["tiny_food"]["xpatch"]["paper"]
    assert set(entry) == {"mean", "std", "n"} and entry["n"] == 2
    assert set(results["results"]["average"]) >= {"xpatch", "xbase", "no_context"}
    text = (first.folder.root / "results.json").read_text()
    assert "seconds" not in text and "complete_at" not in text
    assert text == (second.folder.root / "results.json").read_text()  # equal runs, equal files


def test_the_tidy_table_and_load_run(runs):
    first, _ = runs
    frame = taskvec.load_run(first.folder.root)
    assert list(frame.columns) == ["task", "seed", "split", "method", "metric", "layer", "value"]
    assert set(frame.split) == {"test", "val_sweep", "test_sweep"}
    xpatch = frame[(frame.split == "test") & (frame.method == "xpatch")]
    assert set(xpatch.layer) == {first.best_layer}
    assert frame[(frame.split == "test") & (frame.method == "xbase")].layer.isna().all()
    assert set(frame[frame.split == "val_sweep"].layer) == {0, 1, 2}
    mean = xpatch[xpatch.metric == "paper"].value.mean()
    results = json.loads((first.folder.root / "results.json").read_text())
    assert mean == pytest.approx(results["results"]["tiny_food"]["xpatch"]["paper"]["mean"])
    assert frame.attrs["chosen_layer"] == first.best_layer
    # what taskvec.evaluate returned, or its folder, read the same
    assert taskvec.load_run(first).equals(frame) and taskvec.load_run(first.folder).equals(frame)


def test_prediction_rows_say_where_they_came_from(runs):
    first, _ = runs
    rows = [json.loads(line) for line in (first.folder.root / "predictions.jsonl").read_text().splitlines()]
    for row in rows:
        assert (row["model"], row["spec"], row["query"], row["style"]) == (
            "tiny-llama-32",
            "text-icl",
            "text",
            None,  # text queries and examples show no picture
        )
        assert row["layer"] == (first.best_layer if row["method"] == "xpatch" else None)
    loaded = taskvec.load_run(first.folder.root, what="predictions")
    assert loaded.equals(first.predictions)
    # nor does the recorded config name a style: --style changes nothing in a text run
    assert json.loads(first.folder.config_path.read_text())["experiment"]["style"] is None
    assert loaded.attrs["config"]["experiment"]["style"] is None


def test_the_layer_selection_is_recorded_and_switching_it_reuses_the_units(tmp_path, monkeypatch):
    """A run says which layer selection it used (config.json, results.json, status.json, the
    report) and the layer each task was read at; the same run with the other selection in the
    same folder computes no unit again (the units do not depend on it)."""
    import shutil

    first = write_tiny_task(tmp_path / "data")
    second = write_tiny_task(tmp_path / "data", name="tiny_food_b", val=6)
    adapter = tiny_llm("llama", layers=3)
    options = {**TINY, "layers": None, "tasks": [str(first), str(second)]}
    shared = evaluate(
        ExperimentConfig.create(**options), tmp_path / "run", adapter=adapter, show_progress=False
    )
    assert shared.layer_selection == "shared"
    assert set(shared.task_layers.values()) == {shared.best_layer}
    shutil.copytree(tmp_path / "run", tmp_path / "per-task")

    def fail(*_args, **_kwargs):
        raise AssertionError("a finished unit was recomputed")

    monkeypatch.setattr("taskvec.pipelines.evaluate.run_unit", fail)
    config = ExperimentConfig.create(**options, layer_selection="per-task")
    per_task = evaluate(config, tmp_path / "per-task", adapter=adapter, show_progress=False)
    write_run_report(per_task)
    root = per_task.folder.root
    assert json.loads((root / "config.json").read_text())["experiment"]["layer_selection"] == "per-task"
    results = json.loads((root / "results.json").read_text())
    assert results["layer_selection"] == "per-task"
    assert results["chosen_layers"] == per_task.task_layers
    assert results["chosen_layer"] == per_task.best_layer == shared.best_layer
    assert json.loads((root / "status.json").read_text())["task_layers"] == per_task.task_layers
    assert "layer selection `per-task`" in (root / "report.md").read_text()
    for task, layer in per_task.task_layers.items():
        rows = per_task.predictions[
            (per_task.predictions.task == task) & (per_task.predictions.method == "xpatch")
        ]
        assert set(rows.layer) == {layer}
    shared_results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert shared_results["layer_selection"] == "shared"
    assert (
        "answer_diversity" in shared_results
        and "whole_label" in shared_results["results"]["average"]["xpatch"]
    )


def test_results_json_gives_one_seed_no_std():
    rows = [{"task": "t", "method": "xpatch", "seed": seed, "paper": ok} for seed, ok in [(1, 1.0), (1, 0.0)]]
    one = metric_summary(pd.DataFrame(rows))["t"]["xpatch"]["paper"]
    assert one == {"mean": 0.5, "std": None, "n": 1}
    two = metric_summary(pd.DataFrame([*rows, {"task": "t", "method": "xpatch", "seed": 2, "paper": 1.0}]))
    assert two["t"]["xpatch"]["paper"] == {"mean": 0.75, "std": 0.25, "n": 2}


def test_load_run_says_whether_the_folder_is_missing_or_unfinished(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        taskvec.load_run(tmp_path / "typo")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="empty is not a taskvec run folder"):
        taskvec.load_run(tmp_path / "empty")
    started = RunFolder(tmp_path / "started")
    started.start({"experiment": {"model": "m"}}, "abc")
    with pytest.raises(ConfigError, match="started is a run that has not finished .* run its command again"):
        taskvec.load_run(started.root)


def test_load_run_names_a_damaged_or_missing_file_and_the_cure(runs, tmp_path):
    import shutil

    first, _ = runs
    folder = tmp_path / "run"
    shutil.copytree(first.folder.root, folder)
    cure = "run the folder's command again to rewrite it from its units"
    text = (folder / "results.json").read_text()
    (folder / "results.json").write_text(text[: len(text) // 2])
    with pytest.raises(ConfigError, match=f"results.json is damaged .*: {cure}$"):
        taskvec.load_run(folder)
    (folder / "results.json").write_text(text.replace('"chosen_layer": ', '"chosen_layer": 1', 1))
    edited = f"results.json is damaged \\(edited since its run wrote it\\): {cure}$"
    with pytest.raises(ConfigError, match=edited):
        taskvec.load_run(folder)
    (folder / "results.json").write_text(text)
    (folder / "tables" / "results_long.csv").unlink()
    with pytest.raises(ConfigError, match=f"results_long.csv is missing: {cure}$"):
        taskvec.load_run(folder)
    predictions = (folder / "predictions.jsonl").read_text()
    (folder / "predictions.jsonl").write_text(predictions[: len(predictions) // 2])
    with pytest.raises(ConfigError, match=f"predictions.jsonl is damaged .*: {cure}$"):
        taskvec.load_run(folder, what="predictions")
    # cut at a line boundary, it still parses: half the rows, read as the run's
    lines = predictions.splitlines(keepends=True)
    (folder / "predictions.jsonl").write_text("".join(lines[: len(lines) // 2]))
    with pytest.raises(ConfigError, match=f"predictions.jsonl is damaged .*: {cure}$"):
        taskvec.load_run(folder, what="predictions")
    (folder / "config.json").write_text("{")
    with pytest.raises(ConfigError, match="config.json is damaged") as refused:
        taskvec.load_run(folder)
    assert "--out" not in str(refused.value), "load_run has no --out to choose"


def test_load_run_refuses_a_folder_being_extended_or_stopped_part_way(runs, tmp_path):
    """A folder extended with a seed more still holds the fewer seeds' results.json: loading it
    gave those silently."""
    import shutil

    first, _ = runs
    folder = RunFolder(tmp_path / "run")
    shutil.copytree(first.folder.root, folder.root)
    config = json.loads(folder.config_path.read_text())
    config["experiment"]["seeds"] = [1, 2, 3]
    folder.config_path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"holds seeds \[1, 2\], while config.json asks seeds \[1, 2, 3\]"):
        taskvec.load_run(folder.root)
    recorded = {key: value for key, value in config.items() if key not in ("config_hash", "lineage")}
    folder.start(recorded, "extended", lineage=config["lineage"])  # as the extending command does
    stopped = r"has not finished .it was stopped part-way.*: run its command again to complete it$"
    with pytest.raises(ConfigError, match=stopped):
        taskvec.load_run(folder.root)
    # the command that is computing it refuses the same command until it ends: wait, not "run again"
    computing = r"has not finished .a taskvec command is computing it now.: wait until it finishes"
    with folder.lock(), pytest.raises(ConfigError, match=computing):
        taskvec.load_run(folder.root)


def test_load_run_of_a_reproduction_names_the_runs_in_it(tmp_path):
    """A reproduction's folder (or its conditions/) was "not a finished taskvec run folder (or one
    written by an older taskvec: run the same command again)": it is finished, and holds runs."""
    (tmp_path / "config.json").write_text(json.dumps({"reproduce": {"styles": ["noto"]}, "model": {}}))
    for name in ("text-icl__text", "instruction__text"):
        RunFolder(tmp_path / "conditions" / name).start({"experiment": {"model": "m"}}, name)
    runs = "the runs in it: conditions/instruction__text, conditions/text-icl__text$"
    with pytest.raises(ConfigError, match=r"is a reproduction \(taskvec reproduce\), not a run; " + runs):
        taskvec.load_run(tmp_path)
    not_a_run = "conditions is not a taskvec run folder"
    with pytest.raises(ConfigError, match=not_a_run + " .*: instruction__text, text-icl__text$"):
        taskvec.load_run(tmp_path / "conditions")
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ConfigError, match="notes.txt: a file"):
        taskvec.load_run(tmp_path / "notes.txt")
