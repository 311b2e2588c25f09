"""``taskvec run --config run.yaml``: every option of ``run`` from a YAML file (keys as flags or
names), flags on the command line override it, unknown keys are refused with a suggestion."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from taskvec.cli import app


class _Stop(Exception):
    pass


@pytest.fixture
def seen(monkeypatch):
    configs = []

    def capture(config, out, load_options=None, **_kwargs):
        configs.append((config, out, load_options))
        raise _Stop

    monkeypatch.setattr("taskvec.pipelines.evaluate.evaluate", capture)
    return configs


def _run(*args: str):
    return CliRunner().invoke(app, ["run", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})


YAML = """\
tasks: [country-capital, food_color]
seed: 1,2
n-examples: 4
test_layers: chosen
template: paper
layer: [3, 5]
out: runs/from-yaml
dtype: bfloat16
verbose: true
answer_tokens: 12
"""


def test_every_option_comes_from_the_file(tmp_path, seen):
    path = tmp_path / "run.yaml"
    path.write_text(YAML)
    result = _run("--config", str(path))
    assert isinstance(result.exception, _Stop), result.output
    config, out, load_options = seen[0]
    assert config.tasks == ["country_capital", "food_color"]
    assert config.seeds == [1, 2] and config.layers == [3, 5]
    assert (config.n_examples, config.test_layers, config.template.name) == (4, "chosen", "paper")
    assert config.answer_tokens == 12  # a label longer than the default 6 tokens can then be credited
    assert str(out) == "runs/from-yaml" and load_options.dtype == "bfloat16"
    assert '"n_examples": 4' in result.output  # verbose: true prints the config


def test_flags_override_the_file(tmp_path, seen):
    path = tmp_path / "run.yaml"
    path.write_text(YAML)
    _run("--n-examples", "3", "--config", str(path), "--seed", "7", "-t", "animal_young")
    config = seen[0][0]
    assert config.n_examples == 3 and config.seeds == [7] and config.tasks == ["animal_young"]
    assert config.test_layers == "chosen"  # what the flags leave alone still comes from the file


def test_an_unknown_key_is_refused_with_the_closest_option(tmp_path, seen):
    path = tmp_path / "run.yaml"
    path.write_text("n_example: 4\n")
    result = _run("--config", str(path))
    assert result.exit_code == 2
    assert "unknown option 'n_example' (did you mean 'n_examples'?)" in result.output
    assert not seen


def test_layer_selection_is_shared_unless_asked_and_a_bad_one_is_one_line(seen):
    result = _run("-t", "food_color")
    assert isinstance(result.exception, _Stop), result.output
    assert seen[-1][0].layer_selection == "shared"
    result = _run("-t", "food_color", "--layer-selection", "per-task")
    assert isinstance(result.exception, _Stop), result.output
    assert seen[-1][0].layer_selection == "per-task"
    bad = _run("-t", "food_color", "--layer-selection", "best")
    assert bad.exit_code == 2 and "--layer-selection" in bad.output and "per-task" in bad.output
    assert len(seen) == 2  # refused before any run


def test_reproduce_passes_its_layer_selection_to_every_condition(monkeypatch):
    configs = []

    def capture(config, out, load_options=None):
        configs.append(config)
        raise _Stop

    monkeypatch.setattr("taskvec.pipelines.reproduce.reproduce", capture)
    result = CliRunner().invoke(app, ["reproduce", "--quick", "--layer-selection", "per-task"])
    assert isinstance(result.exception, _Stop), result.output
    assert configs[0].layer_selection == "per-task"
    from types import SimpleNamespace

    from taskvec.pipelines.reproduce import Reproduction

    adapter = SimpleNamespace(fingerprint="f", num_layers=18, name="m")
    reproduction = Reproduction(adapter, configs[0], "unused", show_progress=False)
    assert reproduction.run_options()["layer_selection"] == "per-task"


@pytest.mark.parametrize("command", ["run", "reproduce"])
@pytest.mark.parametrize(
    ("seeds", "said"),
    [(["1", "1"], "a seed is listed twice"), ([str(2**63)], "seeds are 64-bit integers")],
)
def test_bad_seeds_are_one_line_before_anything_is_written(command, seeds, said, tmp_path, monkeypatch):
    def never(*_args, **_kwargs):
        raise AssertionError("a model was loaded before the seeds were checked")

    monkeypatch.setattr("taskvec.models.registry._load", never)
    out = tmp_path / "out"
    flags = [flag for seed in seeds for flag in ("--seed", seed)]
    result = CliRunner().invoke(app, [command, *flags, "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: invalid {command} options: --seed"), result.output
    assert said in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("command", ["analyze", "reproduce"])
def test_a_command_without_config_says_so_not_what_the_file_holds(command, tmp_path):
    """``reproduce --config x.yaml`` said "no such file" (as if the option existed), and
    ``analyze --config run.yaml`` refused the file's keys one by one."""
    options = tmp_path / "run.yaml"
    options.write_text("quick: true\n")
    result = CliRunner().invoke(app, [command, "--config", str(options)])
    assert result.exit_code == 2 and "No such option: --config" in result.output


def test_one_option_under_two_spellings_is_refused(tmp_path):
    """``seed: [1, 2]`` with ``seeds: [3]`` ran seed 3 alone, without a word."""
    options = tmp_path / "run.yaml"
    options.write_text("seed: [1, 2]\nseeds: [3]\n")
    result = CliRunner().invoke(app, ["run", "--config", str(options)])
    assert result.exit_code == 2 and "'seed' and 'seeds' are one option; give it once" in result.output


def test_a_template_written_as_a_mapping_is_refused_with_where_its_fields_go(tmp_path, seen):
    """``template: {name: io, ...}`` was read as its text: 'unknown template "{'name': 'io', ...}"'."""
    path = tmp_path / "run.yaml"
    path.write_text("tasks: food_color\ntemplate:\n  name: io\n  input_prefix: 'Input: '\n")
    result = _run("--config", str(path))
    assert result.exit_code == 2 and not seen
    said = " ".join(result.output.split())
    assert "'template' is given a mapping; it takes a value (a template's fields go in a JSON file" in said
