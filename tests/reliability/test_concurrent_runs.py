"""One writer per run folder. Two ``taskvec run`` commands on one ``--out`` used to both exit 0 and
leave a 'complete' folder whose config said seeds [1] while its predictions and tables held seeds
1 and 2; now the folder's lock refuses the second command in one line, and a complete folder's
tables always match its config. The lock is the run folder's own (``RunFolder.lock``), so other
processes (the ranks of one launch) can share a folder through it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers.reliability import loads_then, write_tiny_task
from typer.testing import CliRunner

from taskvec.cli import app
from taskvec.errors import ConfigError, FolderBusyError
from taskvec.storage.run_folder import RunFolder

#: two processes side by side on a small machine: one thread each
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
HOLD = """
import sys, time
from taskvec.storage.run_folder import RunFolder
with RunFolder(sys.argv[1]).lock():
    print("held", flush=True)
    time.sleep(600)
"""


def _run_args(task_file: Path, out: Path, *seeds: int) -> list[str]:
    seed_args = [arg for seed in seeds for arg in ("--seed", str(seed))]
    return [
        "run", "--tasks", str(task_file), *seed_args,
        "--layer", "18", "--layer", "20", "--template", "spaced", "--out", str(out),
    ]  # fmt: skip


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _holder(out: Path) -> subprocess.Popen:
    """Another process holding the folder's lock (a running command, or a rank of one launch)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, env=ENV, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def _no_model(_name, _options=None):
    raise AssertionError("a model was loaded for a folder another command holds")


def test_a_command_on_a_folder_another_process_holds_is_refused_in_one_line(smollm2, tmp_path, monkeypatch):
    task_file, out = write_tiny_task(tmp_path / "data"), tmp_path / "run"
    holder = _holder(out)
    try:
        monkeypatch.setattr("taskvec.pipelines.evaluate.load_model", _no_model)  # refused before loading
        result = CliRunner().invoke(app, _run_args(task_file, out, 1))
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        lines = _error_lines(result.output)
        assert len(lines) == 1 and str(out) in lines[0] and "in use by another taskvec command" in lines[0]
        assert sorted(p.name for p in out.iterdir()) == [".taskvec.lock"]  # nothing else written
        started = time.monotonic()
        with pytest.raises(FolderBusyError, match=r"waited 0.3 s"), RunFolder(out).lock(wait=0.3):
            pass
        assert time.monotonic() - started >= 0.3
    finally:
        holder.send_signal(signal.SIGKILL)  # the OS releases a dead holder's lock
        holder.wait()
    monkeypatch.setattr("taskvec.pipelines.evaluate.load_model", lambda _name, _options=None: smollm2)
    result = CliRunner().invoke(app, _run_args(task_file, out, 1))
    assert result.exit_code == 0, result.output
    assert RunFolder(out).is_complete()


def test_two_commands_on_one_folder_never_leave_tables_that_disagree_with_the_config(smollm2, tmp_path):
    """The issue's reproduction: seeds 1 2 in the background, then seed 1 on the same folder once
    its config.json exists. The second is refused (one line, exit 2); the first completes, and the
    folder's config, predictions and tables all say seeds 1 and 2."""
    # ``smollm2`` only makes sure the dequantized weights cache exists before the subprocesses start
    task_file, out = write_tiny_task(tmp_path / "data"), tmp_path / "race"
    command = [sys.executable, "-m", "taskvec.cli"]
    with (tmp_path / "first.log").open("wb") as log:
        first = subprocess.Popen(
            command + _run_args(task_file, out, 1, 2), stdout=log, stderr=subprocess.STDOUT, env=ENV
        )
    deadline = time.monotonic() + 600  # a guard against hanging, not a timing assertion
    while not (out / "config.json").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    second = subprocess.run(command + _run_args(task_file, out, 1), capture_output=True, text=True, env=ENV)
    assert first.wait() == 0, (tmp_path / "first.log").read_text()[-2000:]

    assert second.returncode == 2, second.stderr[-2000:]
    assert "Traceback" not in second.stderr
    lines = _error_lines(second.stderr)
    # refused by the lock while the first runs, or (had the first already finished) because seed 1
    # alone would shrink its complete seeds-1-2 run
    assert len(lines) == 1 and ("in use by another" in lines[0] or "drop seed(s) [2]" in lines[0]), lines
    folder = RunFolder(out)
    assert folder.is_complete()
    assert json.loads(folder.config_path.read_text())["experiment"]["seeds"] == [1, 2]
    predictions = pd.read_json(out / "predictions.jsonl", lines=True)
    assert sorted(predictions["seed"].unique()) == [1, 2]
    assert "seeds [1, 2]" in (out / "report.md").read_text()


def test_analyze_and_reproduce_refuse_a_folder_another_process_holds(smollm2, tmp_path, monkeypatch):
    from helpers.families.llava import build_llava

    from taskvec.pipelines.analyze import run_analysis
    from taskvec.pipelines.reproduce import ReproduceConfig, reproduce

    out = tmp_path / "busy"
    holder = _holder(out)
    try:
        with pytest.raises(FolderBusyError, match="in use by another taskvec command"):
            run_analysis(out=out, adapter=smollm2, tasks=["food_color"], specs=["text-icl"])
        monkeypatch.setattr("taskvec.pipelines.analyze.load_model", _no_model)
        with pytest.raises(FolderBusyError, match="in use by another taskvec command"):
            run_analysis(out=out, tasks=["food_color"], specs=["text-icl"])  # before it loads a model
        # the reproduction is refused before it uses its model: a tiny VLM is enough
        stand_in = build_llava()
        with pytest.raises(FolderBusyError, match="in use by another taskvec command"):
            reproduce(ReproduceConfig.create(quick=True), out, adapter=stand_in, show_progress=False)
        monkeypatch.setattr("taskvec.pipelines.reproduce.load_model", _no_model)
        with pytest.raises(FolderBusyError, match="in use by another taskvec command"):
            reproduce(ReproduceConfig.create(quick=True), out, show_progress=False)
        assert sorted(p.name for p in out.iterdir()) == [".taskvec.lock"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_the_same_command_started_while_the_first_loads_its_model_is_refused_before_loading(
    smollm2, tmp_path, monkeypatch
):
    """The folder's lock is taken before the model loads and held through the run: a second
    command started during the first one's loading (minutes for a 7B model) no longer passes the
    check, loads its own copy and is refused only then. Once the first is done the folder is
    complete, and the same command reads it back."""
    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.pipelines.analyze import run_analysis
    from taskvec.pipelines.evaluate import evaluate

    task_file, out = write_tiny_task(tmp_path / "data"), tmp_path / "run"
    config = ExperimentConfig.create(
        model="smollm2-135m", tasks=[str(task_file)], seeds=[1], layers=[18], template="spaced"
    )
    calls, load = loads_then(lambda: evaluate(config, out, show_progress=False), lambda: smollm2)
    monkeypatch.setattr("taskvec.pipelines.evaluate.load_model", load)
    first = evaluate(config, out, show_progress=False)
    assert calls == ["smollm2-135m"] and first.folder.is_complete()  # the second never loaded

    analysis = tmp_path / "analysis"
    options = {"out": analysis, "tasks": ["food_color"], "specs": ["text-icl"], "prompts": 2, "layer": 18}
    calls, load = loads_then(lambda: run_analysis(**options), lambda: smollm2)
    monkeypatch.setattr("taskvec.pipelines.analyze.load_model", load)
    assert run_analysis(**options).folder.is_complete() and len(calls) == 1


def test_the_same_reproduction_started_while_the_first_loads_is_refused_before_loading(tmp_path, monkeypatch):
    from taskvec.pipelines.reproduce import ReproduceConfig, reproduce

    out, config = tmp_path / "reproduction", ReproduceConfig.create(quick=True)

    def fails_to_load():  # the first command's loading then fails: it leaves no folder behind
        raise ConfigError("the first command's model is not there")

    calls, load = loads_then(lambda: reproduce(config, out, show_progress=False), fails_to_load)
    monkeypatch.setattr("taskvec.pipelines.reproduce.load_model", load)
    monkeypatch.setattr("taskvec.pipelines.reproduce.sees_images", lambda _name: True)
    with pytest.raises(ConfigError, match="model is not there"):
        reproduce(config, out, show_progress=False)
    assert len(calls) == 1 and not out.exists()


def test_a_lock_takes_away_what_it_made_where_nothing_else_was_written(tmp_path):
    """A command refused after it took the lock (a layer out of range, found once the model is
    loaded) leaves nothing: not its folder, nor the folders above it, nor a lock file in an empty
    folder it was given; what was there before, and anything written, stays."""
    made = tmp_path / "p" / "q" / "made"
    with RunFolder(made).lock():
        assert (made / ".taskvec.lock").is_file()
    assert not (tmp_path / "p").exists()

    given = tmp_path / "given"
    given.mkdir()
    with RunFolder(given).lock():
        pass
    assert given.is_dir() and not any(given.iterdir())  # its own folder stays, empty as it was

    with RunFolder(given).lock():  # a lock file already there (another command's) is left alone
        pass
    (given / ".taskvec.lock").touch()
    with RunFolder(given).lock():
        pass
    assert sorted(p.name for p in given.iterdir()) == [".taskvec.lock"]

    used = tmp_path / "r" / "used"
    with RunFolder(used).lock() as lock:
        with lock:  # re-entered: only the last exit may take anything away
            pass
        assert used.is_dir()
        (used / "config.json").write_text("{}")
    assert sorted(p.name for p in used.iterdir()) == [".taskvec.lock", "config.json"]


@pytest.mark.parametrize("target", ["itself", "a file elsewhere"])
def test_a_lock_file_that_is_a_symbolic_link_is_one_line_and_its_target_untouched(tmp_path, target):
    """A lock file linked to itself was a traceback ("Too many levels of symbolic links"); linked
    elsewhere, the command locked another file than its folder's."""
    from taskvec.errors import StorageError

    folder = tmp_path / "run"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("kept")
    link = folder / ".taskvec.lock"
    link.symlink_to(link if target == "itself" else elsewhere)
    refused = pytest.raises(
        StorageError, match=r"\.taskvec\.lock is a symbolic link, not the folder's lock file"
    )
    with refused, RunFolder(folder).lock():
        pass
    assert elsewhere.read_text() == "kept" and link.is_symlink()
    result = CliRunner().invoke(app, ["run", "--tasks", str(write_tiny_task(tmp_path)), "--out", str(folder)])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "symbolic link" in result.output


def test_a_run_given_a_model_in_memory_holds_its_folder_while_it_computes(tmp_path, monkeypatch):
    """``taskvec.evaluate(config, out, adapter=model)`` (a researcher's own model, and each run of
    a reproduction) took no lock: another command on the folder was not refused once the run had
    started, and ``taskvec runs`` listed the run as stopped while it was computing."""
    from helpers.tinyllm import tiny_llm

    import taskvec.pipelines.evaluate as pipeline
    from taskvec.evaluation.protocol import ExperimentConfig

    task_file, out = write_tiny_task(tmp_path / "data"), tmp_path / "run"
    model = tiny_llm("llama")
    config = ExperimentConfig.create(model=model.name, tasks=[str(task_file)], layers=[0, 1])
    seen = []
    computing = pipeline.run_unit

    def run_unit(*args, **kwargs):
        seen.append(RunFolder(out).state())  # what ``taskvec runs`` reads: the lock tried
        with pytest.raises(FolderBusyError, match="in use by another taskvec command"), RunFolder(out).lock():
            pass
        return computing(*args, **kwargs)

    monkeypatch.setattr(pipeline, "run_unit", run_unit)
    pipeline.evaluate(config, out=out, adapter=model, show_progress=False)
    assert seen == ["running"] * len(config.seeds)
    assert RunFolder(out).state() == "complete"


def test_an_analysis_holds_its_folder_while_it_computes(tmp_path, monkeypatch):
    """``analyze(adapter, config, out)`` (the analysis stage of a reproduction calls it) took no
    lock: a second command on the folder was not refused, and the folder read stopped."""
    from helpers.tinyllm import tiny_llm

    import taskvec.pipelines.analyze as pipeline

    model = tiny_llm("llama")
    out = tmp_path / "analysis"
    config = pipeline.AnalysisConfig.create(
        model=model.name, tasks=["food_color"], specs=["text-icl"], prompts=3, lens_prompts=2, layer=1
    )
    seen = []
    collecting = pipeline.collect

    def collect(*args, **kwargs):
        seen.append(RunFolder(out).state())
        with pytest.raises(FolderBusyError, match="in use by another taskvec command"), RunFolder(out).lock():
            pass
        return collecting(*args, **kwargs)

    monkeypatch.setattr(pipeline, "collect", collect)
    pipeline.analyze(model, config, out, show_progress=False)
    assert seen == ["running"]
    assert RunFolder(out).state() == "complete"


def test_a_reader_looking_at_a_folder_does_not_refuse_the_command_that_writes_it(tmp_path):
    """``taskvec runs`` and ``load_run`` take a running folder's lock for a moment to see whether a
    command holds it; a command that tried to take it at that moment was refused ("in use by
    another taskvec command") with no other command running. It waits out a look now."""
    import threading

    import filelock

    out = tmp_path / "run"
    out.mkdir()
    (out / "status.json").write_text('{"state": "running"}')  # what makes a reader look
    looking, looked = threading.Event(), threading.Event()

    def look() -> None:  # a reader's look (the OS lock, taken at once), held while the command meets it
        with filelock.FileLock(out / ".taskvec.lock", timeout=0):
            looking.set()
            looked.wait(timeout=60)

    reader = threading.Thread(target=look)
    reader.start()
    looking.wait(timeout=60)
    threading.Timer(0.2, looked.set).start()
    with RunFolder(out).lock():  # the command: waits for the look to end
        pass
    reader.join()
    with RunFolder(out).lock(), pytest.raises(FolderBusyError):  # a command's hold still refuses
        RunFolder(out).check_not_busy()
