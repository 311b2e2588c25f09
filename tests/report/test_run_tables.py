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
