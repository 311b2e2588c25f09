"""Fig. 9's answers credited to a task by the paper's prefix rule and by the whole label, and the
control's answers that already fit the patched task shown beside the patched run's."""

from __future__ import annotations

from helpers.conflict import conflict_rows_of

from taskvec.experiments.conflict import _matches, conflict_summary
from taskvec.tasks.task import Item


def test_the_whole_label_does_not_credit_a_word_that_starts_like_the_label():
    franc = Item(id="ch", input="Switzerland", label="franc", aliases=["Swiss franc"])
    for answer, paper, whole in [
        (" francophone Switzerland)", True, False),
        (" franc\nQ:", True, True),
        (" Swiss franc.", True, True),
        (" fr", True, False),  # the paper's rule also credits a prefix of the label
        (" euro", False, False),
    ]:
        assert (_matches(answer, franc, "paper"), _matches(answer, franc, "whole_label")) == (paper, whole)


def test_the_summary_gives_both_metrics_and_the_controls_fit_to_the_patched_task():
    summary = conflict_summary(
        conflict_rows_of([True, True, False, False], [True, False, False, False], [True] + [False] * 3)
    )
    row = summary.loc[("a", "b")]
    assert row["items"] == 4
    assert row["patched: patched task wins"] == 0.5
    assert row["patched: patched task wins (whole_label)"] == 0.25
    assert row["control: patched task"] == 0.25 and row["control: patched task (whole_label)"] == 0.0
