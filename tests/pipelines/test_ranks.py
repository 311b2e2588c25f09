"""``torchrun --nproc-per-node 2 -m taskvec ...`` on the CPU (gloo): the two ranks share the units
of each run folder, and every CSV, JSONL and Markdown table they write is byte for byte that of
one process running the same command with the same threads per process, also when one rank is
killed with SIGKILL mid-run and the same launch is run again.

Each launch runs beside its single-process twin (one thread each, as on a 2-core machine), so a
comparison costs the longer of the two, not their sum."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.reliability import write_tiny_task

pytestmark = pytest.mark.slow

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: a guard against a hang, not a timing assertion
DEADLINE_S = 900
#: files that state run times, not results (see docs/scaling-out.md)
TIMED = {"report.md", "status.json"}


def _single(args: list[str], out: Path) -> list[str]:
    return [sys.executable, "-m", "taskvec", *args, "--out", str(out)]


def _launch(args: list[str], out: Path) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "taskvec", *args, "--out", str(out),
    ]  # fmt: skip


def _start(command: list[str], log: Path) -> subprocess.Popen:
    with log.open("wb") as stream:  # a file, not a pipe: a full pipe would stall the child
        return subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=ENV)


def _finish(process: subprocess.Popen, log: Path) -> None:
    assert process.wait(timeout=DEADLINE_S) == 0, log.read_text(errors="replace")[-3000:]


def _tables(root: Path) -> dict[str, bytes]:
    """Every CSV, JSONL and Markdown file under ``root`` but those that state times; the folder's
    own path (an analysis summary names its quick task files by path) is written as ``<out>``."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.suffix in {".csv", ".jsonl", ".md"} and path.name not in TIMED:
            files[str(path.relative_to(root))] = path.read_bytes().replace(str(root).encode(), b"<out>")
    return files


def _assert_same_tables(got: Path, expected: Path) -> None:
    got_files, expected_files = _tables(got), _tables(expected)
    assert sorted(got_files) == sorted(expected_files)
    assert any(name.endswith(".csv") for name in got_files)
    different = [name for name in expected_files if got_files[name] != expected_files[name]]
    assert not different, different


def _rank_pid(launcher: subprocess.Popen, rank: int) -> int | None:
    """The process id of ``rank`` among the launcher's children (None before it starts)."""
    try:
        children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    except OSError:
        return None
    for pid in children:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ:
            return int(pid)
    return None


def _unfinished_claim(root: Path, rank: int) -> tuple[Path, str, str] | None:
    """A unit ``rank`` claimed and has not written yet: (its folder, key, launch id)."""
    for record in root.rglob("units/claims.json"):
        try:
            claims = json.loads(record.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        for key, owner in claims.items():
            units = record.parent
            written = (units / f"{key}.json").exists() or (units / f"{key}.safetensors").exists()
            if owner["rank"] == rank and not written:
                return units, key, owner["launch"]
    return None


def _kill_rank_mid_run(launcher: subprocess.Popen, out: Path, log: Path, ready=lambda: True):
    """SIGKILL rank 1 while it computes a unit it claimed (once ``ready()``); returns that claim,
    or None if the unit was written in the instant before the kill."""
    deadline = time.monotonic() + DEADLINE_S
    while launcher.poll() is None and time.monotonic() < deadline:
        claim = _unfinished_claim(out, rank=1) if ready() else None
        pid = _rank_pid(launcher, 1)
        if claim is not None and pid is not None:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert launcher.wait(timeout=DEADLINE_S) != 0, f"the launch ended by itself: {log.read_text()[-2000:]}"
    assert json.loads((out / "status.json").read_text())["state"] == "running"
    assert claim is not None, "rank 1 never held an unfinished unit"
    units, key, _ = claim
    written = (units / f"{key}.json").exists() or (units / f"{key}.safetensors").exists()
    return None if written else claim


def _assert_taken_over(claim: tuple[Path, str, str] | None) -> None:
    """The unit the killed rank had claimed and not finished went to the relaunch."""
    if claim is None:
        return
    units, key, launch = claim
    owner = json.loads((units / "claims.json").read_text())[key]
    assert owner["launch"] != launch


def test_a_two_rank_run_writes_the_single_process_tables_also_after_a_rank_is_killed(smollm2, tmp_path):
    # ``smollm2`` only makes sure the dequantized weights cache exists before the subprocesses start
    task = write_tiny_task(tmp_path / "data")
    args = ["run", "--tasks", str(task), "--seed", "1,2,3", "--layer", "18", "--layer", "20"]
    args += ["--template", "spaced", "--verbose"]
    single = _start(_single(args, tmp_path / "single"), tmp_path / "single.log")
    launch = _start(_launch(args, tmp_path / "ranks"), tmp_path / "ranks.log")
    _finish(launch, tmp_path / "ranks.log")
    _finish(single, tmp_path / "single.log")
    _assert_same_tables(tmp_path / "ranks", tmp_path / "single")
    said = (tmp_path / "ranks.log").read_text(errors="replace")
    # rank 0's bars end at the launch's totals, not at its own share; the options are shown once
    assert re.search(r"(?m)^tiny_food text-icl seed \d .*\b3/3\b", said), said[-2000:]  # the units bar
    assert re.search(r"test answers at \S+ \S+ .*\b(\d+)/\1 answers", said), said[-2000:]
    assert said.count('"selection_metric"') == 1
    claims = json.loads((tmp_path / "ranks" / "units" / "claims.json").read_text())
    # the units, then the test answers at the chosen layer
    assert sorted(claims) == ["answers/tiny_food", *(f"tiny_food__seed{s}" for s in (1, 2, 3))]
    assert {owner["rank"] for owner in claims.values()} == {0, 1}  # both ranks took units
    assert len({owner["launch"] for owner in claims.values()}) == 1

    killed = tmp_path / "killed"
    victim = _start(_launch(args, killed), tmp_path / "killed.log")
    claim = _kill_rank_mid_run(victim, killed, tmp_path / "killed.log")
    _finish(_start(_launch(args, killed), tmp_path / "relaunch.log"), tmp_path / "relaunch.log")
    assert json.loads((killed / "status.json").read_text())["resumed"] is True
    _assert_same_tables(killed, tmp_path / "single")
    _assert_taken_over(claim)


def test_reproduce_quick_on_two_ranks_killed_and_relaunched_writes_the_single_process_tables(tmp_path):
    # one task, in the training style only (six conditions of the matrix, not ten: the CI budget;
    # every stage runs, the conflict stage to its "no conflicting pair"), and so a reproduction of
    # one task, whose Table 4 cosines have no other task for a baseline; per-task layers: the
    # task's test answers are saved and read back at its own layer
    args = ["reproduce", "--quick", "--tasks", "country_capital", "--style", "noto"]
    args += ["--layer-selection", "per-task"]
    single = _start(_single(args, tmp_path / "single"), tmp_path / "single.log")
    killed = tmp_path / "ranks"
    victim = _start(_launch(args, killed), tmp_path / "ranks.log")
    # past the first condition, so the relaunch reuses finished folders, units and claims alike
    conditions = killed / "conditions"

    def one_condition_done() -> bool:
        return any('"complete"' in p.read_text() for p in conditions.glob("*/status.json"))

    claim = _kill_rank_mid_run(victim, killed, tmp_path / "ranks.log", one_condition_done)
    _finish(_start(_launch(args, killed), tmp_path / "relaunch.log"), tmp_path / "relaunch.log")
    _finish(single, tmp_path / "single.log")
    _assert_same_tables(killed, tmp_path / "single")
    _assert_taken_over(claim)
