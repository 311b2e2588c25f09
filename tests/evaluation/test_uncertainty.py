"""A difference between two methods with the interval its test items allow: seeds averaged per
item, items paired, tasks weighted alike (as the tables' average row)."""

import math

import pandas as pd
import pytest

from taskvec.evaluation.uncertainty import Z_95, paired_difference


def _rows(scores: dict[tuple[str, int], list[int]]) -> pd.DataFrame:
    """(task, seed) -> per-item scores, items named by task and position."""
    return pd.DataFrame(
        [
            {"task": task, "seed": seed, "item": f"{task}-{i}", "paper": float(score)}
            for (task, seed), values in scores.items()
            for i, score in enumerate(values)
        ]
    )


def test_the_difference_is_the_tables_difference_and_its_interval_the_items_spread():
    a = _rows({("capital", 1): [1, 1, 0, 1], ("capital", 2): [1, 0, 0, 1]})
    b = _rows({("capital", 1): [0, 1, 0, 0], ("capital", 2): [0, 1, 0, 0]})
    difference = paired_difference(a, b, "paper")
    # seeds averaged per item: a = 1, .5, 0, 1; b = 0, 1, 0, 0; d = 1, -.5, 0, 1
    d = [1.0, -0.5, 0.0, 1.0]
    mean = sum(d) / 4
    error = math.sqrt(sum((x - mean) ** 2 for x in d) / 3 / 4)
    assert difference.mean == pytest.approx(a.paper.mean() - b.paper.mean()) == pytest.approx(mean)
    assert (difference.low, difference.high) == pytest.approx((mean - Z_95 * error, mean + Z_95 * error))
    assert (difference.items, difference.tasks) == (4, 1)


def test_tasks_count_alike_whatever_their_size_and_their_errors_add():
    """The average row is the unweighted mean over tasks: a 2-item task weighs as much as an
    8-item one, and the interval of that mean combines each task's own."""
    a = _rows({("big", 1): [1, 0] * 4, ("small", 1): [1, 1]})
    b = _rows({("big", 1): [0] * 8, ("small", 1): [0, 1]})
    difference = paired_difference(a, b, "paper")
    assert difference.mean == pytest.approx((0.5 + 0.5) / 2)
    big_error = math.sqrt(0.5**2 * 8 / 7 / 8)  # d = 1,0,...: var (ddof 1) = 2/7
    small_error = math.sqrt(0.5 / 2)  # d = 1, 0: var 0.5
    error = math.sqrt(big_error**2 + small_error**2) / 2
    assert difference.high - difference.mean == pytest.approx(Z_95 * error)
    assert difference.items == 10 and difference.tasks == 2


def test_items_only_one_side_answered_are_left_out_and_none_shared_is_refused():
    a = _rows({("t", 1): [1, 1, 1]})
    b = _rows({("t", 1): [0, 0]})
    assert paired_difference(a, b, "paper").items == 2
    with pytest.raises(ValueError, match="share no scored item"):
        paired_difference(a, _rows({("u", 1): [0]}), "paper")


def test_the_normal_interval_agrees_with_a_bootstrap_over_the_items():
    """Three tasks of 20, 50 and 100 items, two correlated methods: the interval's ends lie within
    0.015 of a bootstrap's (items drawn again within each task), as on the committed
    reproductions (scripts/interval_against_bootstrap.py)."""
    import numpy as np

    generator = np.random.default_rng(7)
    rows_a, rows_b = {}, {}
    for task, items in (("t20", 20), ("t50", 50), ("t100", 100)):
        shared = generator.random(items)
        rows_a[(task, 1)] = list((shared + 0.3 * generator.random(items)) > 0.7)
        rows_b[(task, 1)] = list((shared + 0.3 * generator.random(items)) > 0.9)
    a, b = _rows(rows_a), _rows(rows_b)
    found = paired_difference(a, b, "paper")
    paired = a.set_index(["task", "item"]).paper - b.set_index(["task", "item"]).paper
    by_task = [group.to_numpy() for _, group in paired.groupby(level="task")]
    means = [np.mean([generator.choice(d, len(d)).mean() for d in by_task]) for _ in range(4000)]
    low, high = np.percentile(means, [2.5, 97.5])
    assert found.low == pytest.approx(low, abs=0.015) and found.high == pytest.approx(high, abs=0.015)
    assert found.high - found.low > 0.1  # a real spread, not a degenerate case


@pytest.mark.parametrize(("hits", "items"), [(1, 1), (0, 4), (28, 84), (50, 100), (99, 100)])
def test_a_shares_interval_is_wilsons_score_interval(hits, items):
    """Checked against scipy's own (scikit-learn brings scipy): inside 0-1, and not a point where
    every item agrees, as the normal interval of one item is."""
    from scipy.stats import binomtest

    from taskvec.evaluation.uncertainty import share_interval

    got = share_interval(hits, items)
    expected = binomtest(hits, items).proportion_ci(method="wilson")
    assert got.mean == hits / items and (got.items, got.tasks) == (items, 1)
    assert got.low == pytest.approx(expected.low, abs=1e-12)
    assert got.high == pytest.approx(expected.high, abs=1e-12)
    assert 0.0 <= got.low <= got.mean <= got.high <= 1.0
