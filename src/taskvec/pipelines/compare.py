"""Two finished runs compared method by method on the test items both answered (``taskvec compare``).

Two runs of the same tasks (another model, template, layer selection, style, dtype) answer the
same test items, so their difference needs no second sample: each item's score is averaged over
its run's seeds, items are paired by (task, item), and the difference gets the 95% interval of
``evaluation.uncertainty.paired_difference`` over the items. A task is compared only where both
runs read the same task data (the fingerprint each config.json records); each run's xPatch is
read at its own chosen layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from taskvec.errors import ConfigError
from taskvec.evaluation.metrics import METRICS
from taskvec.evaluation.scoring import METHODS
from taskvec.evaluation.uncertainty import paired_difference
from taskvec.pipelines.results import load_run
from taskvec.storage.run_folder import RunFolder

#: what ``compare_runs`` compares unless told: the paper's metric and the whole-label one
COMPARED_METRICS = ("paper", "whole_label")
COMPARISON_COLUMNS = ["metric", "method", "a", "b", "difference", "low", "high", "items", "tasks"]


def compare_runs(
    a: str | Path | RunFolder, b: str | Path | RunFolder, metrics: Sequence[str] = COMPARED_METRICS
) -> pd.DataFrame:
    """Run ``b`` minus run ``a``: one row per (metric, method) both runs scored, with ``a`` and
    ``b`` (each the mean over the compared tasks of its mean over the paired items), their
    ``difference``, its 95% interval ``low`` to ``high``, the ``items`` paired and the ``tasks``.

    ``attrs["tasks"]`` lists the tasks compared, ``attrs["left_out"]`` each task left out and why
    (in one run only, or other task data under the same name), ``attrs["layers"]`` the layer each
    run read each task's xPatch at. Where the runs share every item,
    ``a`` and ``b`` are their tables' ``average`` row; otherwise they are that of the shared items."""
    unknown = [metric for metric in metrics if metric not in METRICS]
    if unknown:
        raise ConfigError(f"compare: unknown metric {unknown[0]!r}; one of {list(METRICS)}")
    first, second = load_run(a, what="predictions"), load_run(b, what="predictions")
    tasks, left_out = _shared_tasks(first.attrs["config"], second.attrs["config"])
    if not tasks:
        why = "; ".join(f"{task}: {reason}" for task, reason in left_out.items())
        raise ConfigError(f"{a} and {b} share no task to compare ({why})")
    rows = []
    for metric in metrics:
        for method in METHODS:
            answered = [
                frame[(frame.method == method) & frame.task.isin(tasks)].dropna(subset=[metric])
                for frame in (first, second)
                if metric in frame.columns
            ]
            if len(answered) < 2 or any(part.empty for part in answered):
                continue
            row = _compared(*answered, metric)
            if row is not None:
                rows.append({"metric": metric, "method": method, **row})
    frame = pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
    layers = [{task: run.attrs["chosen_layers"].get(task) for task in tasks} for run in (first, second)]
    frame.attrs.update(tasks=tasks, left_out=left_out, layers=layers)
    return frame


def _shared_tasks(first: dict, second: dict) -> tuple[list[str], dict[str, str]]:
    """The tasks both configs ran on the same data (in the first run's order), and each other
    task with why it is left out."""
    data = [config.get("tasks", {}) for config in (first, second)]
    tasks, left_out = [], {}
    for task in dict.fromkeys([*data[0], *data[1]]):
        if task not in data[1]:
            left_out[task] = "only in A"
        elif task not in data[0]:
            left_out[task] = "only in B"
        elif data[0][task].get("fingerprint") != data[1][task].get("fingerprint"):
            left_out[task] = (
                f"other task data under the same name (fingerprints {data[0][task].get('fingerprint')} "
                f"and {data[1][task].get('fingerprint')})"
            )
        else:
            tasks.append(task)
    return tasks, left_out


def _compared(first: pd.DataFrame, second: pd.DataFrame, metric: str) -> dict | None:
    """One method's scores in the two runs on the items both answered, and B minus A."""
    per_item = [rows.groupby(["task", "item"])[metric].mean().astype(float) for rows in (first, second)]
    shared = per_item[0].index.intersection(per_item[1].index)
    if shared.empty:
        return None
    means = [float(scores.loc[shared].groupby(level="task").mean().mean()) for scores in per_item]
    found = paired_difference(second, first, metric)
    return {
        "a": round(means[0], 6),
        "b": round(means[1], 6),
        "difference": round(found.mean, 6),
        "low": round(found.low, 6),
        "high": round(found.high, 6),
        "items": found.items,
        "tasks": found.tasks,
    }


__all__ = ["COMPARED_METRICS", "compare_runs"]
