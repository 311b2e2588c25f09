"""``taskvec --help`` lists each command by a one-line summary, and the help pages keep what the
markup would otherwise swallow (``<model>`` placeholders) and join wrapped docstring lines."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from taskvec.cli import app

COMMANDS = [
    *("run", "models", "tasks", "prompts", "runs", "compare", "analyze", "verify"),
    *("reproduce", "report", "align", "data"),
]


def help_text(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


def test_the_command_list_gives_each_command_one_line():
    lines = help_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "Commands" in line)
    rows = lines[start + 1 : next(i for i in range(start, len(lines)) if lines[i].startswith("╰"))]
    names = [re.match(r"│ (\w*)", row).group(1) for row in rows]
    assert names == COMMANDS  # a row without a name is a summary spilling onto a second line


@pytest.mark.parametrize(
    ("command", "placeholder"),
    [
        ("run", "runs/<model>-<spec>-..."),
        ("analyze", "<run>/analysis"),
        ("reproduce", "runs/reproduce-<model>"),
    ],
)
def test_default_folders_keep_their_placeholders(command, placeholder):
    assert placeholder in help_text(command)


def test_a_wrapped_docstring_reads_as_one_paragraph():
    text = help_text("reproduce")
    flowing = " ".join(line.strip(" │") for line in text.splitlines())
    assert "Writes report.md / report.html with our numbers beside the paper's" in " ".join(flowing.split())
    long_lines = [line for line in text.splitlines() if "our numbers" in line]
    assert long_lines and "beside" in long_lines[0]  # not broken where the docstring's line ended


def test_version_is_printed_on_stdout():
    """There was no ``--version``, though config.json records the version a run was made with."""
    import taskvec

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"taskvec {taskvec.__version__}"
