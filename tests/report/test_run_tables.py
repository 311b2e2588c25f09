"""A run's tables: the whole-label metric beside the paper's, collapsed methods marked, and the
layer selection said in the report."""

from __future__ import annotations

import pandas as pd

from taskvec.report.tables import COLLAPSED_MARK, layer_text, summary_beside


def _predictions() -> pd.DataFrame:
    """One task, four items of four labels; xPatch answers "a" (the first token of the label
    "aa") for every item, right by paper on item 0 only; xBase answers each label."""
    rows = []
    labels = ["aa", "bb", "cc", "dd"]
    for i, label in enumerate(labels):
        common = {"task": "toy", "seed": 1, "item": str(i), "label": label}
        rows.append({**common, "method": "xpatch", "prediction": "a", "paper": i == 0, "whole_label": False})
        rows.append({**common, "method": "xbase", "prediction": label, "paper": True, "whole_label": i < 2})
    return pd.DataFrame(rows)


def test_whole_label_stands_beside_paper_and_a_collapsed_method_is_marked():
    table = summary_beside(_predictions())
    assert list(table.columns) == [
        ("xBase", "paper"),
        ("xBase", "whole_label"),
        ("xPatch", "paper"),
        ("xPatch", "whole_label"),
    ]
    assert table.loc["toy", ("xBase", "paper")] == "1.00"  # one seed: no std to show
    assert table.loc["toy", ("xBase", "whole_label")] == "0.50"
    assert table.loc["toy", ("xPatch", "paper")] == f"0.25 {COLLAPSED_MARK}"
    assert table.loc["toy", ("xPatch", "whole_label")] == f"0.00 {COLLAPSED_MARK}"
    assert COLLAPSED_MARK not in table.loc["average", ("xPatch", "paper")]


def test_a_cell_shows_its_spread_over_seeds_and_a_single_seed_shows_none():
    first = _predictions()
    second = first.assign(seed=2, paper=first.method.eq("xbase") & first.item.isin(["0", "1"]))
    table = summary_beside(pd.concat([first, second]), metrics=("paper",))
    assert table.loc["toy", ("xBase", "paper")] == "0.75 ± 0.25"  # seeds at 1.00 and 0.50
    one_seed = summary_beside(first, metrics=("paper",))
    assert "±" not in one_seed.loc["toy", ("xBase", "paper")]


def test_the_report_line_names_the_layer_selection_and_each_tasks_layer():
    shared = layer_text({"a": 11, "b": 11}, "shared", 11)
    assert "`shared`" in shared and "**11** for every task" in shared
    per_task = layer_text({"a": 9, "b": 12}, "per-task", 11)
    assert "`per-task`" in per_task and "a 9, b 12" in per_task and "would choose 11" in per_task
    assert "flat" not in shared + per_task


def test_the_report_line_says_when_a_flat_curve_left_the_choice_to_the_tie_rule():
    shared = layer_text({"a": 8, "b": 8}, "shared", 8, {"average": 0.0})
    assert "**8** for every task" in shared and "that curve is flat** (0.00 at every layer swept)" in shared
    per_task = layer_text({"a": 8, "b": 12}, "per-task", 8, {"a": 0.25})
    assert "not the data, chose: a (0.25)" in per_task


def test_the_val_curve_plot_marks_each_tasks_layer_under_per_task_selection(saved_figures, tmp_path):
    """Per-task selection drew one line at the mean curve's best, labelled "chosen layer", though
    no task need have been read there."""
    from taskvec.report.tables import plot_curves

    curve = pd.DataFrame(
        {0: [0.6, 0.0, 0.3], 1: [0.5, 0.5, 0.5], 2: [0.4, 1.0, 0.7]}, index=["a", "b", "average"]
    )
    plot_curves(curve, 2, "t", tmp_path / "per_task.png", {"a": 0, "b": 2})
    axis = saved_figures[-1].axes[0]
    labels = [line.get_label() for line in axis.get_lines()]
    assert "a (layer 0)" in labels and "b (layer 2)" in labels
    assert not any("chosen layer" in label for label in labels)
    assert any(label.startswith("mean curve's best 2") for label in labels)
    marked = {
        (float(line.get_xdata()[0]), float(line.get_ydata()[0]))
        for line in axis.get_lines()
        if line.get_marker() == "o"
    }
    assert marked == {(0.0, 0.6), (2.0, 1.0)}
    plot_curves(curve, 2, "t", tmp_path / "shared.png")
    assert "chosen layer 2" in [line.get_label() for line in saved_figures[-1].axes[0].get_lines()]


def test_the_val_curve_plot_of_one_task_shows_that_task_on_whole_layers(saved_figures, tmp_path):
    """One task's line lay hidden under the identical black "average" one (still in the legend),
    and the layer axis ticked 2.5, 7.5, ..."""
    from taskvec.report.tables import plot_curves

    curve = pd.DataFrame({0: [0.1, 0.1], 4: [0.5, 0.5], 9: [0.3, 0.3]}, index=["a", "average"])
    plot_curves(curve, 4, "t", tmp_path / "one.png")
    axis = saved_figures[-1].axes[0]
    labels = [line.get_label() for line in axis.get_lines()]
    assert "a" in labels and "average" not in labels
    assert all(float(tick).is_integer() for tick in axis.get_xticks())


def test_the_report_shows_the_validation_curves_it_names():
    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.report.tables import run_report

    assert "![validation curves](plots/val_curve.png)" in run_report(ExperimentConfig.create(), "x", [])


def test_the_report_reads_xpatch_at_each_tasks_layer_under_per_task_selection():
    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.report.tables import run_report

    per_task = run_report(
        ExperimentConfig.create(layer_selection="per-task"), "layer selection `per-task`", []
    )
    assert "xPatch at each task's chosen layer" in per_task
    assert "xPatch at the chosen layer" in run_report(ExperimentConfig.create(), "layer selection", [])


def test_concentrated_answers_on_a_split_the_rule_cannot_judge_are_said_not_judged():
    """Every label 'yes': no answer can reach twice its share, so the report said "No method's
    answers collapsed" over a method answering 'the' for every item."""
    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.report.tables import run_report, unjudged_cells

    rows = []
    for i in range(4):
        common = {
            "task": "same",
            "seed": 1,
            "item": str(i),
            "label": "yes",
            "paper": False,
            "whole_label": False,
        }
        rows.append({**common, "method": "no_context", "prediction": "the"})
        rows.append({**common, "method": "xbase", "prediction": ["yes", "no", "maybe", "ok"][i]})
    unjudged = unjudged_cells(pd.DataFrame(rows))
    assert unjudged == {("same", "no_context"): 1.0}  # xBase's answers are not concentrated
    report = run_report(ExperimentConfig.create(), "x", [], unjudged=unjudged)
    assert "No method's answers collapsed" not in report
    assert "**Not judged for collapse** (‡): No Context on same (top answer 1.00 of the items)" in report


def test_a_method_the_rule_cannot_judge_is_marked_in_its_cells_and_recorded_as_unknown():
    """A method answering 'sweet' for every item of a split 58% 'sweet' was recorded
    ``collapsed: false`` in results.json and answer_diversity.csv, its cells unmarked: read as a
    verdict of "not collapsed" that the rule cannot give."""
    from taskvec.evaluation.scoring import answer_diversity, summary_table
    from taskvec.pipelines.results import diversity_summary
    from taskvec.report.tables import format_summary, summary_beside, unjudged_cells

    rows = []
    for i in range(12):
        label = "sweet" if i < 7 else ["sour", "salty", "bitter", "umami", "spicy"][i - 7]
        common = {"task": "flavor", "seed": 1, "item": str(i), "label": label}
        for method, answer in (("xpatch", "sweet"), ("xbase", label), ("no_context", ["a", "b", "c"][i % 3])):
            right = answer == label
            rows.append(
                {**common, "method": method, "prediction": answer, "paper": right, "whole_label": right}
            )
    predictions = pd.DataFrame(rows)
    collapsed = answer_diversity(predictions)["collapsed"]
    # one answer for all, and every item right: on this split the rule can tell neither apart
    assert pd.isna(collapsed[("flavor", "xpatch")]) and pd.isna(collapsed[("flavor", "xbase")])
    assert collapsed[("flavor", "no_context")] == False  # noqa: E712  (judged: its answers vary)
    assert diversity_summary(predictions)["flavor"]["xpatch"]["collapsed"] is None
    assert diversity_summary(predictions)["flavor"]["no_context"]["collapsed"] is False
    cells = format_summary(summary_table(predictions, "paper"), set(), unjudged_cells(predictions))
    assert cells.loc["flavor", "xPatch"].endswith(" ‡") and cells.loc["flavor", "xBase"].endswith(" ‡")
    assert not cells.loc["flavor", "No Context"].endswith("‡")
    assert summary_beside(predictions).loc["flavor", ("xPatch", "whole_label")].endswith(" ‡")


def test_a_tasks_own_best_layer_on_a_flat_curve_is_named_the_tie_rules():
    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.report.tables import run_report

    report = run_report(
        ExperimentConfig.create(), "x", [], per_task_best={"a": 4, "b": 6}, flat_tasks={"a": 0.0}
    )
    assert "(`--layer-selection per-task`): a 4 (flat curve, 0.00: the tie rule's), b 6" in report


def test_tied_best_layers_are_named_in_the_report_and_the_selection_line():
    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.report.tables import layer_text, run_report

    report = run_report(
        ExperimentConfig.create(), "x", [], per_task_best={"a": 8, "b": 6}, tied_tasks={"a": [8, 12, 16]}
    )
    assert "(`--layer-selection per-task`): a 8 (tied with 12, 16: the tie rule's), b 6" in report
    shared = layer_text({"a": 10, "b": 10}, "shared", 10, tied={"average": [10, 11]})
    assert "**layers 10, 11 share its best value**, so the tie rule (the lowest layer)" in shared
    per_task = layer_text({"a": 8, "b": 6}, "per-task", 6, tied={"a": [8, 12]})
    tail = "**tied best layers**, where the tie rule (the lowest) chose among them: a (layers 8, 12)"
    assert per_task.endswith(tail)
