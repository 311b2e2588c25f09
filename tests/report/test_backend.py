"""Importing taskvec leaves matplotlib's backend alone: a notebook keeps its inline plots."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_report_modules_keeps_the_backend_the_user_chose():
    """Three report modules called ``matplotlib.use("Agg")`` at import, so a notebook that
    imported ``taskvec.report.tables`` lost its inline backend."""
    code = (
        "import matplotlib; matplotlib.use('svg')\n"
        "import taskvec.report.tables, taskvec.report.plots, taskvec.report.reproduce.plots\n"
        "import taskvec.cli\n"
        "print(matplotlib.get_backend())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "svg"
