"""A run's report is written into a hidden folder and moved in once whole (``staged_report``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from taskvec.storage.run_folder import RunFolder


def _dead_pid() -> int:
    """A process id no process has now: one that ran and was waited for."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def test_a_killed_writers_report_folder_goes_and_a_live_ones_stays(tmp_path):
    """``kill -9`` while the report was written left ``.report-<host>-<pid>.tmp`` with a whole
    copy of the tables, never removed: a glob of the run's tables found both."""
    folder, host = RunFolder(tmp_path), socket.gethostname()
    dead = tmp_path / f".report-{host}-{_dead_pid()}.tmp"
    live = tmp_path / f".report-{host}-{os.getppid()}.tmp"  # a writer at work (this test's parent)
    for staging in (dead, live):
        (staging / "tables").mkdir(parents=True)
        (staging / "tables" / "summary_paper.csv").write_text("old numbers\n")
    with folder.staged_report() as staging:
        (staging / "tables").mkdir()
        (staging / "tables" / "summary_paper.csv").write_text("new numbers\n")
        (staging / "report.md").write_text("# report\n")
    assert not dead.exists() and live.is_dir()
    assert (tmp_path / "tables" / "summary_paper.csv").read_text() == "new numbers\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([live.name, "report.md", "tables"])


def test_another_machines_report_folder_goes_only_once_it_is_old(tmp_path):
    """On a cluster's shared file system a pid names a process of the machine that wrote it: a
    writer at work on another node was removed when its pid was free here, and a killed one's
    folder stayed for good when its pid was taken here."""
    dead_here = _dead_pid()
    at_work = tmp_path / f".report-other-node-{dead_here}.tmp"  # its pid is free on this machine
    left = tmp_path / f".report-other-node-{os.getppid()}.tmp"  # its pid is taken on this machine
    for staging in (at_work, left):
        staging.mkdir()
    hours_ago = time.time() - 2 * 3600
    os.utime(left, (hours_ago, hours_ago))
    with RunFolder(tmp_path).staged_report() as staging:
        (staging / "report.md").write_text("# report\n")
    assert at_work.is_dir() and not left.exists()
