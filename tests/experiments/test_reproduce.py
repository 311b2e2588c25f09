"""``taskvec reproduce --quick`` on the real embedded VLM writes a complete, well-formed report.

Two of the six tasks (flags, one conflicting pair) keep the test to a few CPU-minutes; every
stage, table and plot is still produced."""

from __future__ import annotations

import json
import os
import shutil
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from taskvec.cli import app
from taskvec.evaluation.scoring import flat_selection_curves, tied_selection_curves
from taskvec.models.registry import LoadOptions, load_model
from taskvec.pipelines import reproduce as reproduce_module
from taskvec.pipelines.reproduce import ReproduceConfig, finished_reproduction, reproduce
from taskvec.report.reproduce import write_report

pytestmark = pytest.mark.slow

TASKS = ["country_capital", "country_currency"]  # a conflicting pair (Fig. 9)
TABLES = [
    "table3_noto_paper",
    "table3_openmoji_paper",
    "table3_noto_strict",
    "table3_openmoji_strict",
    "table3_noto_whole_label",
    "table3_openmoji_whole_label",
    "diversity_noto",
    "diversity_openmoji",
    "matrix_paper",
    "matrix_whole_label",
    "matrix_strict",
    "table4",
    "table4_similarity",
    "ensemble_noto",
    "ensemble_openmoji",
    "conflict_summary",
    "claims",
]


@pytest.fixture(scope="module")
def vlm():
    """The embedded VLM, loaded once for the module (the reproduction and its resumption)."""
    return load_model("embedded-vlm")


@pytest.fixture(scope="module")
def report(vlm, tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    config = ReproduceConfig.create(quick=True, tasks=TASKS)
    path = write_report(reproduce(config, out, adapter=vlm, show_progress=False))
    return out, path


def test_the_report_and_every_table_and_plot_exist(report):
    out, path = report
    text = (out / "report.md").read_text()
    assert out / "report.md" == path
    for heading in ("Table 3", "Table 10", "Table 4", "Fig. 8", "Fig. 9", "Claims"):
        assert heading in text
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    for name in TABLES:
        assert (out / "tables" / f"{name}.csv").is_file(), name
        assert (out / "tables" / f"{name}.md").is_file(), name
    for plot in ("layer_curves_noto", "layer_curves_openmoji", "ensemble_noto"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 1000
    assert any((out / "analysis" / "plots").glob("similarity*.png"))
    assert '"state": "complete"' in (out / "status.json").read_text()
    assert "| ('" not in text  # row labels of several levels are columns, not Python tuples
    assert "one seed, so no std" in text and "± 0.00" not in text  # quick: one seed, no spread
    assert "| nan" not in text


def test_the_report_says_what_each_condition_of_the_matrix_took(report):
    out, _ = report
    line = next(x for x in (out / "report.md").read_text().splitlines() if "the matrix by condition" in x)
    timings = line.split("): ", 1)[1].split(", ")
    assert len(timings) == 10  # every specification x query, each image cell in two styles
    assert "Text ICL -> image (noto)" in line and "Image ICL (openmoji) -> text" in line
    assert all(float(t.rsplit(" ", 1)[1]) > 0 for t in timings)


@pytest.mark.parametrize(
    ("finder", "key", "heading"),
    [
        (flat_selection_curves, "flat_layers", "Flat validation curves"),
        (tied_selection_curves, "tied_layers", "Tied best layers"),
    ],
)
def test_the_report_names_every_layer_the_tie_rule_chose(report, vlm, finder, key, heading):
    """A condition whose layer the tie rule chose, on a flat curve (common with --quick's six
    items) or among layers sharing the best value, was said only in that condition's own report
    (the tie: not even there), not in the reproduction's."""
    out, _ = report
    context = json.loads((out / "report_context.json").read_text())
    text = (out / "report.md").read_text()
    found = {}
    for folder in sorted((out / "conditions").iterdir()):
        run = reproduce_module._finished_run_in(folder, vlm.fingerprint)
        curves = finder(run.val_scores, run.config.selection_metric, run.layer_selection)
        if curves:
            found[folder.name] = curves
    assert len(context[key]) == len(found)
    if found:
        line = text.split(f"**{heading}**", 1)[1].split("\n", 1)[0]
        assert all(label in line for label in context[key])
    else:
        assert heading not in text


def test_every_accuracy_is_a_fraction(report):
    out, _ = report
    for name, index in (("table3_noto_paper", 0), ("table3_openmoji_strict", 0), ("table4", [0, 1])):
        table = pd.read_csv(out / "tables" / f"{name}.csv", index_col=index)
        assert set(TASKS) <= set(table.columns), name
        values = table.to_numpy().ravel()
        assert len(values) and ((values >= 0) & (values <= 1)).all(), name
    matrix = pd.read_csv(out / "tables" / "matrix_paper.csv", index_col=[0, 1]).drop(columns="layer")
    assert ((matrix.to_numpy() >= 0) & (matrix.to_numpy() <= 1)).all()


def test_a_finished_reproduction_resumes_without_recomputing(report, vlm, capsys):
    out, _ = report
    before = (out / "tables" / "conflict_outputs.csv").stat().st_mtime_ns
    first = json.loads((out / "status.json").read_text())
    again = reproduce(ReproduceConfig.create(quick=True, tasks=TASKS), out, adapter=vlm, show_progress=True)
    assert (out / "tables" / "conflict_outputs.csv").stat().st_mtime_ns == before
    # each stage and condition is named as it begins: the bars name only a task and a spec, so a
    # log of "food_color text-icl seed 1" ten times over did not say which condition it was
    said = "".join(capsys.readouterr().err.split())  # rich wraps at the console's width (xdist: 80)
    for stage in ("matrix (Tables 3, 10)", "ensembling (Fig. 8)", "task conflict (Fig. 9)", "analyses"):
        assert "".join(f"{stage} ...".split()) in said, stage
    assert "".join(f"text-icl__image-noto ({out / 'conditions' / 'text-icl__image-noto'})".split()) in said
    # the stage times stay what computing them took (the launch that read them back added its
    # moment), and the report says they are summed over two launches
    status = json.loads((out / "status.json").read_text())
    assert status["launches"] == 2 and status["seconds"] >= first["seconds"]
    assert first["timings"]["matrix (Tables 3, 10)"] > 1.0
    for stage, seconds in first["timings"].items():
        assert seconds <= status["timings"][stage] <= seconds + 5.0, stage
    write_report(again)
    line = next(x for x in (out / "report.md").read_text().splitlines() if "wall time per stage" in x)
    assert "summed over the 2 launches that finished it" in line
    assert f"matrix (Tables 3, 10) {status['timings']['matrix (Tables 3, 10)']}" in line
    assert "stopped part-way" not in line


def test_times_after_a_launch_stopped_part_way_are_said_to_leave_it_out(vlm, tmp_path):
    """A reproduction resumed after a stopped launch reported that launch's reused work as taking
    no time ("matrix 1.9, ensembling 0.0"), with nothing to say why. (Its own small reproduction:
    a quick one cannot resume where it was copied.)"""
    out = tmp_path / "reproduce"
    config = ReproduceConfig.create(model=vlm.name, quick=True, tasks=TASKS[:1], styles=["noto"])
    reproduce(config, out, adapter=vlm, show_progress=False)
    status = json.loads((out / "status.json").read_text())
    (out / "status.json").write_text(json.dumps({"state": "running", "resumed": False}))  # stopped
    # and a stage table edited by hand (every item right), its stamp kept: computed again, as the
    # first launch wrote it (its scores became the claims: "1.00 vs 0.00, yes")
    ensemble = out / "tables" / "ensemble_scores.csv"
    written = ensemble.read_text()
    edited = pd.read_csv(ensemble).assign(correct=lambda f: f.correct.str.replace(".", "x"), accuracy=1.0)
    edited.to_csv(ensemble, index=False)
    again = reproduce(config, out, adapter=vlm, show_progress=False)
    assert ensemble.read_text() == written
    resumed = json.loads((out / "status.json").read_text())
    assert resumed["after_a_stopped_launch"] is True and resumed["launches"] == 1
    assert resumed["timings"]["matrix (Tables 3, 10)"] < status["timings"]["matrix (Tables 3, 10)"]
    write_report(again)
    line = next(x for x in (out / "report.md").read_text().splitlines() if "wall time per stage" in x)
    assert "resumed after a launch stopped part-way" in line and "its time is not counted" in line


class Loaded(Exception):
    """A model would have been loaded."""


@pytest.fixture
def finished(report, vlm, tmp_path):
    """A copy of the complete reproduction (its report written) and its options."""
    out, _ = report
    copy = tmp_path / "reproduce"
    shutil.copytree(out, copy)  # file times kept: the report is newer than the status
    return copy, ReproduceConfig.create(model=vlm.name, quick=True, tasks=TASKS)


def test_the_same_reproduction_again_reads_its_report_back_before_any_model_loads(finished, monkeypatch):
    out, config = finished
    assert finished_reproduction(config, out) == out / "report.md"

    def load(*_args, **_kwargs):
        raise Loaded

    monkeypatch.setattr(reproduce_module, "load_model", load)
    before = (out / "status.json").read_bytes()
    args = ["reproduce", "--model", config.model, "--quick", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--tasks", TASKS[0], "--tasks", TASKS[1]])
    assert result.exit_code == 0, result.output

    def flat(text: str) -> str:  # rich wraps at the terminal's width, within a path too
        return "".join(text.split())

    said = flat(result.output)
    assert flat(f"{out} holds this reproduction, complete: read back, nothing computed") in said
    assert flat(f"report: {out / 'report.md'}") in said
    assert (out / "status.json").read_bytes() == before  # nothing written, the stage times kept


def _older_table(path, column: str) -> None:
    """A stage table as a taskvec before ``column`` wrote it (its stamp kept: the same stage)."""
    frame = pd.read_csv(path)
    frame.drop(columns=[column]).to_csv(path, index=False)


def _first(folder, pattern: str):
    return sorted(folder.glob(pattern))[0]


@pytest.mark.parametrize(
    "damage",
    [
        lambda out: _first(out / "conditions", "*/units/*.json").unlink(),
        lambda out: _first(out / "transfer", "*/vectors/*.safetensors").write_bytes(b"not a vector"),
        lambda out: _first(out / "conditions", "*/status.json").write_text('{"state": "running"}'),
        lambda out: shutil.rmtree(_first(out / "transfer", "llm-*")),
        lambda out: (out / "analysis" / "status.json").write_text('{"state": "running"}'),
        lambda out: (out / "report.md").unlink(),
        lambda out: os.utime(out / "status.json", ns=(time.time_ns() + 10**9,) * 2),  # report not rewritten
        lambda out: _older_table(out / "tables" / "ensemble_scores.csv", "correct"),
        lambda out: _older_table(out / "tables" / "conflict_outputs.csv", "fits_patched_whole_label"),
        lambda out: (out / "tables" / "ensemble_scores.csv").write_text(""),  # was a traceback
    ],
    ids=[
        "a unit gone",
        "a transfer vector damaged",
        "a condition unfinished",
        "a transfer run gone",
        "the analysis unfinished",
        "no report",
        "the report older than the finish",
        "Fig. 8 by an older taskvec (no item-by-item scores)",
        "Fig. 9 by an older taskvec (no whole-label columns)",
        "Fig. 8 table emptied",
    ],
)
def test_anything_short_of_complete_is_resumed_with_the_models_loaded(finished, damage):
    out, config = finished
    damage(out)
    assert finished_reproduction(config, out) is None


def test_other_weights_or_options_are_not_read_back(finished):
    out, config = finished
    assert finished_reproduction(config, out, LoadOptions(dtype="bfloat16")) is None  # other numerics
    assert finished_reproduction(config.model_copy(update={"llm": "smollm2-135m"}), out) is None
    assert finished_reproduction(config.model_copy(update={"seeds": [1, 2]}), out) is None
