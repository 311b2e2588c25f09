"""What ``taskvec run`` prints around the run: the resolved config only with ``--verbose`` (it is
in config.json anyway), and one line on Ctrl-C saying how to resume (exit code 130)."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from taskvec.cli import _print_frame, app


def _run(monkeypatch, *args: str, raises: BaseException):
    def stop(*_args, **_kwargs):
        raise raises

    monkeypatch.setattr("taskvec.pipelines.evaluate.evaluate", stop)
    env = {"COLUMNS": "200", "NO_COLOR": "1"}
    return CliRunner().invoke(app, ["run", "-t", "food_color", *args], env=env)


def test_the_config_is_printed_only_with_verbose(monkeypatch):
    quiet = _run(monkeypatch, raises=SystemExit(0))
    assert '"selection_metric"' not in quiet.output
    loud = _run(monkeypatch, "--verbose", raises=SystemExit(0))
    assert '"selection_metric"' in loud.output


def test_verbose_prints_the_config_as_the_run_records_it(monkeypatch):
    """A text run draws no picture: config.json records no style, and neither does --verbose;
    an image run records the style its pictures are drawn in."""
    text = _run(monkeypatch, "--verbose", raises=SystemExit(0))
    assert '"style": null' in text.output
    images = _run(monkeypatch, "--verbose", "--query", "image", "--style", "openmoji", raises=SystemExit(0))
    assert '"style": "openmoji"' in images.output


def test_ctrl_c_says_the_same_command_resumes_and_exits_130(monkeypatch):
    result = _run(monkeypatch, raises=KeyboardInterrupt())
    assert result.exit_code == 130
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["interrupted; run the same command again to resume where it stopped"]


def test_a_summary_into_a_file_keeps_each_cell_on_one_line(capsys):
    methods = ("No Context", "Majority", "xBase", "xPatch")
    cells = {method: ["0.10 ± 0.02", "0.33 ± 0.05 †"] for method in methods}
    _print_frame(pd.DataFrame(cells, index=["country_currency", "average"]), "paper (test, layer 11)")
    out = capsys.readouterr().out  # not a terminal: no width to wrap to
    rows = [line for line in out.splitlines() if "country_currency" in line or "average" in line]
    assert len(rows) == 2
    assert rows[0].count("0.10 ± 0.02") == 4 and rows[1].count("0.33 ± 0.05 †") == 4
