"""A run's report is written into a hidden folder and moved in once whole (``staged_report``)."""

from __future__ import annotations

import os
import subprocess
import sys

from taskvec.storage.run_folder import RunFolder


def _dead_pid() -> int:
    """A process id no process has now: one that ran and was waited for."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


def test_a_killed_writers_report_folder_goes_and_a_live_ones_stays(tmp_path):
    """``kill -9`` while the report was written left ``.report-<pid>.tmp`` with a whole copy of
    the tables, never removed: a glob of the run's tables found both."""
    folder = RunFolder(tmp_path)
    dead = tmp_path / f".report-{_dead_pid()}.tmp"
    live = tmp_path / f".report-{os.getppid()}.tmp"  # a writer still at work (this test's parent)
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
