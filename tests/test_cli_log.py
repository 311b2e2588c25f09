"""The command's output in a job's log (no terminal): no bars that redraw themselves with \\r."""

from __future__ import annotations

import subprocess
import sys

#: the command's start, then a tqdm bar as transformers draws one while it converts GGUF weights
_COMMAND_THEN_A_BAR = """
import sys
from taskvec import cli
cli.app = lambda **_: None
cli.main()
import tqdm
for _ in tqdm.tqdm(range(3), desc="converting", file=sys.stderr):
    pass
"""


def test_the_libraries_tqdm_bars_are_off_in_a_log():
    """transformers' "Converting and de-quantizing GGUF tensors" bar wrote hundreds of \\r redraws
    into the log of every job that loaded a model not yet cached."""
    import os

    env = {key: value for key, value in os.environ.items() if key != "TQDM_DISABLE"}
    done = subprocess.run(
        [sys.executable, "-c", _COMMAND_THEN_A_BAR], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "converting" not in done.stderr


def test_in_a_log_a_table_title_wider_than_its_table_is_one_line(capsys):
    """The title of the paired differences was wrapped at its table's width: a grep for it found
    half of it."""
    from rich.table import Table

    from taskvec.cli import _print_table

    title = "xPatch minus each method on the same test items (95% interval over the items)"
    table = Table(title=title)
    table.add_column("comparison")
    table.add_column("paper")
    table.add_row("xPatch - xBase", "+0.00 (-0.08 to +0.08)")
    _print_table(table)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].strip() == title
    assert "xPatch - xBase" in "\n".join(lines[1:])
