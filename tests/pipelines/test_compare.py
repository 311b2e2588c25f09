"""Two runs compared method by method on the test items both answered (``taskvec compare``)."""

from __future__ import annotations

import json

import pytest
from helpers.reliability import TINY, write_tiny_task
from helpers.tinyllm import tiny_llm
from typer.testing import CliRunner

from taskvec.cli import app
from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.compare import compare_runs
from taskvec.pipelines.evaluate import evaluate

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of the same tasks under two templates and other seeds (other demonstrations, so
    other majority answers too), and one whose second task has other data under the same name."""
    root = tmp_path_factory.mktemp("compare")
    first = write_tiny_task(root / "data")
    second = write_tiny_task(root / "data", name="tiny_food_b", val=6)
    other = write_tiny_task(root / "other_data", name="tiny_food_b", val=6, test=2)  # same name, other data
    adapter = tiny_llm("llama", layers=3)
    options = {**TINY, "layers": None, "seeds": [1, 2]}

    def run(name: str, tasks, **changes):
        config = ExperimentConfig.create(**{**options, "tasks": [str(t) for t in tasks], **changes})
        return evaluate(config, root / name, adapter=adapter, show_progress=False)

    return (
        run("spaced", [first, second]),
        run("paper", [first, second], template="paper", seeds=[3]),
        run("other", [first, other], template="paper"),
    )


def test_b_minus_a_on_the_same_items_is_the_difference_of_their_tables(runs):
    spaced, paper, _ = runs
    found = compare_runs(spaced.folder.root, paper.folder.root)
    assert found.attrs["tasks"] == ["tiny_food", "tiny_food_b"] and found.attrs["left_out"] == {}
    assert set(found.metric) == {"paper", "whole_label"}
    for row in found.itertuples():
        a = spaced.summary(row.metric)["mean"].loc["average", row.method]
        b = paper.summary(row.metric)["mean"].loc["average", row.method]
        assert (row.a, row.b) == (pytest.approx(a, abs=1e-6), pytest.approx(b, abs=1e-6))
        assert row.difference == pytest.approx(b - a, abs=1e-5)
        assert row.low <= row.difference <= row.high and row.items == 6 and row.tasks == 2
    assert (found.difference != 0).any()  # the templates differ somewhere: the comparison is not vacuous


def test_a_task_of_other_data_under_the_same_name_is_left_out_and_said(runs):
    spaced, _, other = runs
    found = compare_runs(spaced.folder.root, other.folder.root, ["paper"])
    assert found.attrs["tasks"] == ["tiny_food"]
    assert found.attrs["left_out"]["tiny_food_b"].startswith("other task data under the same name")
    assert set(found["items"]) == {3}


def test_runs_with_no_task_in_common_are_refused_in_one_line(runs, tmp_path):
    spaced, _, _ = runs
    lone = write_tiny_task(tmp_path / "data", name="tiny_lone")
    config = ExperimentConfig.create(**{**TINY, "layers": None, "tasks": [str(lone)]})
    alone = evaluate(config, tmp_path / "lone", adapter=tiny_llm("llama", layers=3), show_progress=False)
    with pytest.raises(ConfigError, match="share no task to compare .*tiny_lone: only in B"):
        compare_runs(spaced.folder.root, alone.folder.root)
    with pytest.raises(ConfigError, match="unknown metric 'accuracy'"):
        compare_runs(spaced.folder.root, alone.folder.root, ["accuracy"])


def test_the_command_prints_what_each_run_is_a_table_per_metric_and_what_was_left_out(runs):
    spaced, _, other = runs
    done = CliRunner().invoke(
        app, ["compare", str(spaced.folder.root), str(other.folder.root), "--metric", "whole_label"], env=ENV
    )
    assert done.exit_code == 0, done.output
    assert "whole_label: B minus A on the same test items" in done.stdout
    assert "paper: B minus A" not in done.stdout and "xPatch" in done.stdout
    said = " ".join(done.stderr.split())
    assert "template spaced" in said and "template paper" in said and "xPatch at layer" in said
    assert "left out: tiny_food_b (other task data under the same name" in said
    config = json.loads((spaced.folder.root / "config.json").read_text())
    assert config["tasks"]["tiny_food"]["fingerprint"] in json.dumps(
        json.loads((other.folder.root / "config.json").read_text())["tasks"]
    )
    refused = CliRunner().invoke(
        app, ["compare", str(spaced.folder.root), str(spaced.folder.root.parent)], env=ENV
    )
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1 and refused.stderr.startswith("error:")
