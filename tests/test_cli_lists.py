"""The command line takes lists as users type them (``--tasks a b``, ``--tasks a,b``, ``--seed
1,2,3``, repeated flags), names flags in its errors (``--test-layers``, not ``test_layers``) and
shows no ``<bool>`` beside a flag in its help."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from taskvec.cli import app


class _Stop(Exception):
    pass


@pytest.fixture
def seen(monkeypatch):
    """The config ``taskvec run`` would evaluate (the run itself is stopped there)."""
    configs = []

    def capture(config, *_args, **_kwargs):
        configs.append(config)
        raise _Stop

    monkeypatch.setattr("taskvec.pipelines.evaluate.evaluate", capture)
    return configs


def _run(*args: str):
    return CliRunner().invoke(app, ["run", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.mark.parametrize(
    "args",
    [
        ["--tasks", "country_capital", "food_color", "--seed", "1", "2"],
        ["--tasks", "country_capital,food_color", "--seed", "1,2"],
        ["-t", "country_capital", "-t", "food_color", "--seed", "1", "--seed", "2"],
        ["--tasks=country_capital,food_color", "--seed=1,2"],
        ["--seed", "1", "--tasks", "country_capital", "--seed", "2", "-t", "food_color"],
    ],
    ids=["spaces", "commas", "repeated", "equals", "mixed"],
)
def test_lists_are_read_as_users_type_them(args, seen):
    result = _run(*args, "--layer", "0,1", "--n-examples", "4")
    assert isinstance(result.exception, _Stop), result.output
    config = seen[0]
    assert config.tasks == ["country_capital", "food_color"]
    assert config.seeds == [1, 2]
    assert config.layers == [0, 1]
    assert config.n_examples == 4


def test_a_task_file_whose_path_has_a_comma_is_not_split(tmp_path, seen):
    path = tmp_path / "a,b.json"
    path.write_text("{}")
    _run("--tasks", str(path))
    assert seen and seen[0].tasks == [str(path)]


def test_errors_name_the_flag_not_the_field(seen):
    result = _run("--tasks", "food_color", "--test-layers", "some")
    assert result.exit_code == 2
    assert "--test-layers: Input should be 'all' or 'chosen'" in result.output
    assert "test_layers" not in result.output


def _help(*command: str) -> str:
    return CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"}).output


def test_help_shows_no_bool_beside_flags():
    text = _help("reproduce")
    assert "--quick" in text and "<bool>" not in text
    assert "<list[" not in text and "<int> ..." in text
    assert "<bool>" not in _help("data", "build")  # commands of the data group too


@pytest.mark.parametrize(
    "args",
    [
        ["--task-file", "a.json", "RUN"],
        ["--task-file", "a.json", "b.json", "RUN", "--device", "cpu"],
        ["RUN", "--task-file", "a.json", "b.json"],
        ["--device", "cpu", "--task-file", "a.json,b.json", "RUN"],
    ],
)
def test_a_list_option_before_the_commands_argument_leaves_it_the_argument(args, monkeypatch):
    seen = []

    def capture(run, _adapter, task_files, **_kwargs):
        seen.append((str(run), [str(path) for path in task_files]))
        raise _Stop

    monkeypatch.setattr("taskvec.pipelines.verify.verify_runs", capture)
    monkeypatch.setattr("taskvec.pipelines.verify.recorded_dtype", lambda _run: "float32")  # no run here
    CliRunner().invoke(app, ["verify", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})
    expected = ["a.json", "b.json"] if "b.json" in " ".join(args) else ["a.json"]
    assert seen == [("RUN", expected)]


def test_models_lists_text_and_vision_language_families_apart():
    """``taskvec models`` listed every model_type in one line: which take pictures was not said."""
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    lines = {
        line.split(": ")[0]: line.split(": ")[1].split(", ")
        for line in result.output.splitlines()
        if ": " in line
    }
    assert "llama" in lines["families, text (model_type)"]
    assert "llava" in lines["families, vision-language (model_type)"]
    assert not set(lines["families, text (model_type)"]) & set(
        lines["families, vision-language (model_type)"]
    )


def test_a_table_too_wide_for_the_terminal_is_printed_row_by_row_not_cut():
    """At 80 columns ``taskvec runs`` cut every cell (``0.0…``, ``que…``); a table wider than the
    terminal is now printed one row at a time, every value whole."""
    from taskvec.models.registry import NAMED_MODELS

    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "50", "FORCE_COLOR": "1", "NO_COLOR": ""})
    assert result.exit_code == 0, result.output
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    assert "…" not in plain
    for named in NAMED_MODELS.values():
        assert named.name in plain.splitlines()  # each row's first cell on its own line
    assert all(len(line) <= 50 for line in plain.splitlines() if line.startswith("  "))
