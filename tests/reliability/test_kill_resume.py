"""``kill -9`` in the middle of a real ``taskvec run`` subprocess, then the same command again: the
finished unit is reused from disk, the rest is recomputed, and the final table, predictions and
vectors equal those of an uninterrupted run (a second subprocess, run alongside)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers.reliability import write_tiny_task

from taskvec.storage.run_folder import RunFolder

TASK = "tiny_food"
#: two runs go side by side on a small machine: one thread each instead of two fighting over cores
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _command(task_file: Path, out: Path) -> list[str]:
    """One small task, two seeds (two units: one to reuse, one to redo), two layers."""
    return [
        sys.executable, "-m", "taskvec.cli", "run",
        "--tasks", str(task_file),
        "--seed", "1", "--seed", "2",
        "--layer", "18", "--layer", "20",
        "--template", "spaced",
        "--out", str(out),
    ]  # fmt: skip


def _start(command: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as stream:  # a file, not a pipe: a full pipe would stall the child
        return subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=ENV)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


def test_kill_9_mid_run_then_resume_gives_the_uninterrupted_table(smollm2, tmp_path):
    # ``smollm2`` only makes sure the dequantized weights cache exists before the subprocesses start
    task_file = write_tiny_task(tmp_path / "data")
    straight_out, killed_out = tmp_path / "straight", tmp_path / "killed"
    straight = _start(_command(task_file, straight_out), tmp_path / "straight.log")
    victim = _start(_command(task_file, killed_out), tmp_path / "killed.log")

    folder = RunFolder(killed_out)
    first_unit, second_unit = folder.unit_path(TASK, 1), folder.unit_path(TASK, 2)
    deadline = time.monotonic() + 600  # a guard against hanging, not a timing assertion
    while not first_unit.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, f"the run ended by itself: {_tail(tmp_path / 'killed.log')}"
    assert first_unit.exists(), _tail(tmp_path / "killed.log")
    assert not second_unit.exists(), "killed too late: the second unit had finished too"
    assert folder.status()["state"] == "running"
    assert not (killed_out / "report.md").exists() and not (killed_out / "tables").exists()
    kept = {
        p: (p.stat().st_mtime_ns, p.read_bytes())
        for p in (first_unit, folder.vector_path(TASK, "text-icl", 1))
    }

    resumed = subprocess.run(_command(task_file, killed_out), capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert straight.wait() == 0, _tail(tmp_path / "straight.log")

    assert folder.status()["state"] == "complete" and folder.status()["resumed"] is True
    assert f"resuming {killed_out}: 1 of 2 units already computed" in " ".join(resumed.stderr.split())
    again = subprocess.run(_command(task_file, killed_out), capture_output=True, text=True, env=ENV)
    assert "holds this run, complete: read back, nothing computed" in " ".join(again.stderr.split())
    for path, (mtime, data) in kept.items():  # reused from disk, not recomputed and rewritten
        assert (path.stat().st_mtime_ns, path.read_bytes()) == (mtime, data), path.name
    assert second_unit.exists()
    compared = [
        "predictions.jsonl",
        *(f"tables/{p.name}" for p in sorted((straight_out / "tables").glob("*.csv"))),
    ]
    compared += [f"vectors/{TASK}__text-icl__seed{seed}.safetensors" for seed in (1, 2)]
    assert any(name.startswith("tables/summary_paper") for name in compared)
    for name in compared:
        assert (killed_out / name).read_bytes() == (straight_out / name).read_bytes(), name
    summary = json.loads((killed_out / "status.json").read_text())
    assert summary["best_layer"] == json.loads((straight_out / "status.json").read_text())["best_layer"]
