"""What ``taskvec run`` prints around the run: the resolved config only with ``--verbose`` (it is
in config.json anyway), and one line on Ctrl-C saying how to resume (exit code 130)."""

from __future__ import annotations

from typer.testing import CliRunner

from taskvec.cli import app


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


def test_ctrl_c_says_the_same_command_resumes_and_exits_130(monkeypatch):
    result = _run(monkeypatch, raises=KeyboardInterrupt())
    assert result.exit_code == 130
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["interrupted; run the same command again to resume where it stopped"]
