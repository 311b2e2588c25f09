"""How far a difference between two methods could move on other test items.

Every seed of a run answers the same test items (a seed redraws only the demonstrations), so the
spread over seeds says nothing about the items: a vector averaged over ~30 prompts gives nearly the
same score on every seed, while 100 items leave an accuracy uncertain by several points. What a
comparison needs is the other uncertainty: two methods scored on the same items, paired item by item
(each item's score averaged over the seeds first), and the spread of those differences.

The mean over tasks is unweighted, as the tables' average row is: each task's mean difference
counts once, and the interval of that mean combines the tasks' own (independent items).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from taskvec.storage.markdown import fixed

#: two-sided 95% normal quantile: the interval is the difference +- this many standard errors
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Difference:
    """Method A minus method B on the items both answered, mean over tasks, with its 95% interval."""

    mean: float
    low: float
    high: float
    items: int
    tasks: int

    def phrase(self) -> str:
        """The difference and its interval, as a report says them."""
        mean, low, high = (fixed(value, sign=True) for value in (self.mean, self.low, self.high))
        return f"difference {mean}, 95% interval {low} to {high} over {self.items} items"

    def interval_phrase(self) -> str:
        """The interval alone, of a share (A's rate with B nothing: a proportion, no sign)."""
        return f"95% interval {fixed(self.low)} to {fixed(self.high)} over {self.items} items"


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> Difference:
    """``a`` minus ``b``: rows of predictions (``task``, ``item``, ``seed`` and ``metric``) of two
    methods. Each item's score is averaged over its seeds, items are paired by (task, item), and
    the unweighted mean over tasks of each task's mean difference gets a normal 95% interval from
    the paired differences' spread (``ddof=1``; a task of one item adds no spread)."""
    per_item = [rows.groupby(["task", "item"])[metric].mean().astype(float) for rows in (a, b)]
    paired = (per_item[0] - per_item[1]).dropna()
    if paired.empty:
        raise ValueError("the two methods share no scored item")
    by_task = paired.groupby(level="task")
    task_means = by_task.mean()
    variance_of_means = (by_task.var(ddof=1) / by_task.count()).fillna(0.0)
    mean = float(task_means.mean())
    error = math.sqrt(float(variance_of_means.sum())) / len(task_means)
    return Difference(mean, mean - Z_95 * error, mean + Z_95 * error, len(paired), len(task_means))


def share_interval(hits: int, items: int) -> Difference:
    """The share ``hits / items`` (against nothing) with its 95% Wilson score interval: unlike
    the normal one it stays inside 0-1 and does not shrink to a point where every item agrees
    (1 of 1 reads 0.21 to 1.00, not 1.00 to 1.00)."""
    if items < 1:
        raise ValueError("a share of no items")
    share, z2 = hits / items, Z_95**2
    centre = (share + z2 / (2 * items)) / (1 + z2 / items)
    half = Z_95 * math.sqrt(share * (1 - share) / items + z2 / (4 * items**2)) / (1 + z2 / items)
    return Difference(share, max(0.0, centre - half), min(1.0, centre + half), items, 1)
