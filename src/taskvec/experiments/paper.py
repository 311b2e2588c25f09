"""The paper's published numbers, for the report to stand ours beside.

Luo, Darrell, Bar, "Task Vectors are Cross-Modal", arXiv 2410.22330v1: Table 3 (image queries,
test accuracy), Table 4 (LLM -> VLM) and the specification x query table of its appendix.
Transcribed from the v1 tables; the averages quoted in DEVELOPERS.md (Idefics2 0.01 / 0.18 /
0.51, LLaVA-1.5 0.00 / 0.18 / 0.32) agree with them. Columns: the six tasks, then the average.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from taskvec.tasks.registry import BUILTIN_TASKS

TASK_COLUMNS = (*BUILTIN_TASKS, "average")

# model -> row -> per-task accuracies + average (None: the model cannot run it)
TABLE3: dict[str, dict[str, tuple[float, ...] | None]] = {
    "LLaVA-1.5": {
        "No Context": (0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00),
        "Image ICL Base": None,
        "Image ICL Patch": None,
        "Text ICL xBase": (0.02, 0.18, 0.03, 0.23, 0.28, 0.37, 0.18),
        "Text ICL xPatch": (0.31, 0.30, 0.26, 0.18, 0.53, 0.31, 0.32),
    },
    "Mantis-Fuyu": {
        "No Context": (0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00),
        "Image ICL Base": (0.11, 0.13, 0.24, 0.05, 0.34, 0.23, 0.18),
        "Image ICL Patch": (0.17, 0.03, 0.16, 0.05, 0.50, 0.31, 0.20),
        "Text ICL xBase": (0.09, 0.06, 0.08, 0.02, 0.23, 0.04, 0.09),
        "Text ICL xPatch": (0.32, 0.23, 0.36, 0.09, 0.51, 0.36, 0.31),
    },
    "Idefics2": {
        "No Context": (0.03, 0.00, 0.03, 0.00, 0.01, 0.01, 0.01),
        "Image ICL Base": (0.71, 0.57, 0.43, 0.12, 0.41, 0.35, 0.43),
        "Image ICL Patch": (0.58, 0.32, 0.40, 0.03, 0.39, 0.17, 0.31),
        "Text ICL xBase": (0.11, 0.03, 0.41, 0.13, 0.21, 0.18, 0.18),
        "Text ICL xPatch": (0.61, 0.40, 0.48, 0.62, 0.53, 0.39, 0.51),
    },
}
#: the paper's "Random" row is the majority label of the examples
MAJORITY = (0.00, 0.12, 0.00, 0.18, 0.24, 0.31, 0.14)

TABLE4: dict[str, dict[str, tuple[float, ...]]] = {
    "LLaVA-1.5 (Vicuna -> LLaVA)": {
        "VLM -> VLM xPatch": (0.31, 0.30, 0.26, 0.18, 0.53, 0.31, 0.32),
        "LLM -> VLM xPatch": (0.33, 0.32, 0.25, 0.33, 0.53, 0.45, 0.37),
    },
    "Idefics2 (Mistral -> Idefics2)": {
        "VLM -> VLM xPatch": (0.61, 0.40, 0.48, 0.62, 0.53, 0.39, 0.51),
        "LLM -> VLM xPatch": (0.57, 0.58, 0.46, 0.55, 0.54, 0.39, 0.52),
    },
}

#: specification -> query, patch accuracy (the appendix matrix); Idefics2 and Mantis-Fuyu
MATRIX: dict[str, dict[str, tuple[float, ...]]] = {
    "Idefics2": {
        "Image ICL -> image": (0.58, 0.32, 0.40, 0.03, 0.39, 0.17, 0.31),
        "Text ICL -> image": (0.61, 0.40, 0.48, 0.62, 0.53, 0.39, 0.51),
        "Text ICL -> text": (0.97, 0.61, 0.74, 0.54, 0.63, 0.41, 0.65),
        "Image ICL -> text": (0.81, 0.43, 0.58, 0.04, 0.40, 0.27, 0.42),
    },
    "Mantis-Fuyu": {
        "Image ICL -> image": (0.17, 0.03, 0.16, 0.05, 0.50, 0.31, 0.20),
        "Text ICL -> image": (0.32, 0.23, 0.36, 0.09, 0.51, 0.36, 0.31),
        "Text ICL -> text": (0.46, 0.30, 0.48, 0.18, 0.28, 0.36, 0.34),
        "Image ICL -> text": (0.31, 0.01, 0.36, 0.05, 0.40, 0.34, 0.25),
    },
}


def all_six(columns: Iterable[str]) -> bool:
    """Whether a table of ``columns`` has the paper's six tasks and no other (so its averages match)."""
    return {c for c in columns if c != "average"} == set(BUILTIN_TASKS)


def over_tasks(values: tuple[float, ...], columns: Iterable[str]) -> dict[str, float]:
    """A paper row (six tasks, then the average) for a table of ``columns``: each task's value the
    paper gives, and the ``average`` only where it averages the same tasks, so that it stands
    beside ours like for like: the paper's own over all six, its per-task values' mean over a
    subset of them, none where a task is not one of the paper's."""
    published = dict(zip(TASK_COLUMNS, values, strict=True))
    tasks = [c for c in columns if c != "average"]
    row = {t: published[t] for t in tasks if t in published}
    if all_six(tasks):
        row["average"] = published["average"]
    elif tasks and len(row) == len(tasks):
        row["average"] = sum(row.values()) / len(row)
    return row


def average_note(tasks: Iterable[str]) -> str:
    """What the paper's average beside ours over ``tasks`` is, where it is not its six-task one."""
    tasks = [t for t in tasks if t != "average"]
    if all_six(tasks):
        return ""
    if tasks and all(t in BUILTIN_TASKS for t in tasks):
        return (
            f"Our average is over our {len(tasks)} task(s); the paper's beside it is the mean of its "
            "per-task values over the same tasks, not its six-task average."
        )
    return (
        "Our average is over our tasks, some of which the paper does not have: its average is left "
        "blank rather than set beside ours."
    )


def frame(rows: dict[str, tuple[float, ...] | None]) -> pd.DataFrame:
    """A paper table as a frame with the task columns (missing rows dropped)."""
    return pd.DataFrame({k: v for k, v in rows.items() if v is not None}, index=list(TASK_COLUMNS)).T
