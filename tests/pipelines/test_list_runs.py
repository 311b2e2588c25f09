"""``taskvec runs`` / ``taskvec.list_runs``: every run folder under a folder, one row each, with
its state (complete, running, stopped) and, once complete, the scores its own table shows."""

from __future__ import annotations

import json

import pytest
from helpers.reliability import TINY, counted_units, write_tiny_task
from helpers.tinyllm import tiny_llm
from typer.testing import CliRunner

from taskvec.cli import app
from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.evaluation.scoring import AVERAGE
from taskvec.pipelines.evaluate import evaluate
from taskvec.pipelines.results import LISTED_METHODS, list_other_work, list_runs
from taskvec.storage.run_folder import RunFolder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Under one root: two complete runs (one nested, as a reproduction's are), one killed after
    its first unit; the results of the complete ones."""
    root = tmp_path_factory.mktemp("runs")
    adapter = tiny_llm("llama", layers=3)
    tasks = [str(write_tiny_task(root.parent / "data")), str(write_tiny_task(root.parent / "data", "other"))]
    options = {**TINY, "tasks": tasks, "seeds": [1, 2], "layers": [1, 2]}

    def run(out, **changes):
        config = ExperimentConfig.create(**{**options, **changes})
        return evaluate(config, root / out, adapter=adapter, show_progress=False)

    results = {"text": run("text"), "nested/instruction": run("nested/instruction", spec="instruction")}
    with pytest.MonkeyPatch.context() as patch:
        counted_units(patch, stop_after=1)
        with pytest.raises(KeyboardInterrupt):
            run("killed", layers=[1])  # another run: nothing beside it to copy
    return root, results


def test_every_run_is_listed_with_the_scores_its_own_table_shows(runs):
    root, results = runs
    listed = list_runs(root).set_index("run")
    assert list(listed.index) == ["killed", "nested/instruction", "text"]
    assert dict(listed.state) == {"killed": "stopped", "nested/instruction": "complete", "text": "complete"}
    for name, result in results.items():
        row, table = listed.loc[name], result.summary("whole_label")
        assert row.spec == result.config.spec and row.seeds == "1, 2" and row.layer == str(result.best_layer)
        assert row.selection == result.config.layer_selection
        assert row.template == result.config.template.name  # two runs differing in it told apart
        assert row.tasks == "tiny_food, other"  # the tasks' names, not their files' paths
        by_label = list_runs(root, "whole_label").set_index("run").loc[name]
        for method in LISTED_METHODS:  # an instruction has no demonstrations: no majority
            if method in table["mean"].columns:
                assert by_label[method] == pytest.approx(table.loc[AVERAGE, ("mean", method)], abs=1e-6)
            else:
                assert by_label[method] is None or by_label[method] != by_label[method]
    assert listed.loc["killed", list(LISTED_METHODS)].isna().all()  # no scores before it completes


def test_a_run_a_command_is_writing_is_running(runs):
    root, _ = runs
    with RunFolder(root / "killed").lock():  # what the command resuming it holds
        assert list_runs(root).set_index("run").loc["killed", "state"] == "running"
    assert list_runs(root / "text").run.tolist() == ["text"]  # a run folder itself: its own row


def test_taskvec_runs_prints_a_row_per_run_and_refuses_what_is_not_there(runs, tmp_path):
    root, _ = runs
    shown = CliRunner().invoke(app, ["runs", str(root)], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.output.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in lines] == ["killed", "nested/instruction", "text"]
    missing = CliRunner().invoke(app, ["runs", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such folder" in missing.output
    with pytest.raises(ConfigError, match="unknown metric"):
        list_runs(root, "accuracy")
    with pytest.raises(ConfigError, match="results.json: a file, not a folder"):
        list_runs(root / "text" / "results.json")


def test_a_transfer_run_names_the_model_its_vectors_came_from(tmp_path):
    model, vectors_from = tiny_llm("llama", layers=3), tiny_llm("mistral", layers=3)
    config = ExperimentConfig.create(
        **{**TINY, "tasks": [str(write_tiny_task(tmp_path / "data"))], "layers": [1]}
    )
    root = tmp_path / "runs"
    evaluate(config, root / "transfer", adapter=model, show_progress=False, vector_adapter=vectors_from)
    evaluate(config, root / "own", adapter=model, show_progress=False)
    listed = list_runs(root).set_index("run")
    assert listed.loc["transfer", "model"] == f"{model.name} <- {vectors_from.name}"
    assert listed.loc["own", "model"] == model.name


def test_a_run_with_a_damaged_file_is_listed_as_damaged_beside_the_others(runs, tmp_path):
    """One cut results.json failed the whole listing, a damaged status.json refused it, and a
    damaged config.json dropped its run from it."""
    import shutil

    source, _ = runs
    root = tmp_path / "runs"
    shutil.copytree(source, root)
    for name in ("text", "cut", "edited", "no-status", "no-config"):
        if name != "text":
            shutil.copytree(root / "text", root / name)
    text = (root / "cut" / "results.json").read_text()
    (root / "cut" / "results.json").write_text(text[: len(text) // 2])
    edited = json.loads(text)  # a score set by hand was listed as the run's (load_run said otherwise)
    for task in edited["results"].values():
        task["xpatch"]["paper"]["mean"] = 0.99
    (root / "edited" / "results.json").write_text(json.dumps(edited))
    (root / "no-status" / "status.json").write_text('{"state": "comp')
    (root / "no-config" / "config.json").write_text('{"experiment": {')
    listed = list_runs(root).set_index("run")
    assert dict(listed.state) == {
        "cut": "damaged (results.json)",
        "edited": "damaged (results.json)",
        "killed": "stopped",
        "nested/instruction": "complete",
        "no-config": "damaged (config.json)",
        "no-status": "damaged (status.json)",
        "text": "complete",
    }
    assert listed.loc["cut", "spec"] == "text-icl" and listed.loc["cut", list(LISTED_METHODS)].isna().all()
    assert listed.loc["text", "xpatch"] == list_runs(source).set_index("run").loc["text", "xpatch"]
    shown = CliRunner().invoke(app, ["runs", str(root)], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "damaged (status.json)" in shown.output and "damaged (config.json)" in shown.output


def test_a_listed_score_is_rounded_once_where_it_is_shown():
    """4/21 = 0.190476 was rounded to 0.1905 in the listing, then shown as 0.191 (0.19 in the
    run's own tables)."""
    from taskvec.cli import _cell

    assert _cell(4 / 21) == "0.19" and _cell(0.365) == f"{0.365:.2f}" and _cell(None) == ""


def test_a_reproduction_and_an_analysis_say_how_they_stand_under_the_runs(tmp_path):
    """``taskvec runs`` on a reproduction listed its runs, all complete, and nothing else: a
    reproduction killed in its later stages (ensembling, conflict, analyses) looked finished."""
    reproduction = RunFolder(tmp_path / "rep")
    reproduction.start({"reproduce": {"styles": ["noto"]}, "model": {}}, "rep")  # running, no holder
    run = RunFolder(tmp_path / "rep" / "conditions" / "text-icl__text")
    run.start({"experiment": {"model": "m"}}, "run")
    run.finish(best_layer=1)
    analysis = RunFolder(tmp_path / "rep" / "analysis")
    analysis.start({"analysis": {"model": "m"}}, "analysis")
    analysis.finish()
    result = CliRunner().invoke(app, ["runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # as read, whatever the console's width
    stopped = "stopped part-way (killed or interrupted): the same command resumes it"
    assert f"reproduction folder rep: {stopped}" in said
    assert "analysis folder rep/analysis: complete" in said
    with reproduction.lock():  # a command computing it
        said = " ".join(CliRunner().invoke(app, ["runs", str(tmp_path / "rep")]).output.split())
    assert "reproduction folder rep: running (a taskvec command is computing it)" in said


def test_a_reproduction_whose_status_is_damaged_is_listed_as_damaged_beside_the_others(tmp_path):
    for name in ("broken", "whole"):
        RunFolder(tmp_path / name).start({"reproduce": {"styles": ["noto"]}, "model": {}}, name)
        RunFolder(tmp_path / name).finish()
    (tmp_path / "broken" / "status.json").write_text('{"state": "comp')  # cut short
    result = CliRunner().invoke(app, ["runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "reproduction folder broken: damaged (status.json does not parse)" in said
    assert "reproduction folder whole: complete" in said


def test_a_folder_whose_command_is_loading_its_model_is_listed_as_starting(tmp_path):
    """A command takes its folder's lock, loads its model (minutes for a 7B), then writes
    config.json: until then ``taskvec runs`` did not show the folder at all."""
    from taskvec.storage.run_folder import LOCK_NAME, FolderLock

    (tmp_path / "left").mkdir()
    (tmp_path / "left" / LOCK_NAME).touch()  # a killed command's lock file, held by none
    with FolderLock(tmp_path / "loading"):  # a command holding it, nothing written yet
        result = CliRunner().invoke(app, ["runs", str(tmp_path)])
        listed = list_other_work(tmp_path)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "new folder loading: a taskvec command is starting in it (loading its model" in said
    assert [(where, kind) for where, kind, _ in listed] == [("loading", "new")]
    assert list_other_work(tmp_path) == []  # let go: nothing to list (its lock file went with it)
