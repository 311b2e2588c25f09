"""The report's parts (sections of text, tables and figures) and how a number is shown in them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from taskvec.storage.markdown import fixed

COLLAPSED_MARK = "†"
#: a method the collapse rule cannot judge (``evaluation.scoring.not_judged``)
NOT_JUDGED_MARK = "‡"


@dataclass
class Table:
    """A table of the report; rows whose ``source`` (a column or index level) names the paper
    are the paper's numbers, set beside ours."""

    frame: pd.DataFrame
    caption: str = ""
    index: bool = True


@dataclass
class Figure:
    path: str  # relative to the report
    caption: str


@dataclass
class Section:
    title: str  # Markdown
    level: int
    blocks: list = field(default_factory=list)  # Markdown text | Table | Figure
    anchor: str = ""


def number(value: float | int | str | None, digits: int) -> str:
    """A cell: text as written, a missing number empty, a number rounded as every table rounds it."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return fixed(value, digits)


def mark(cells: pd.DataFrame, collapsed: pd.DataFrame | None) -> pd.DataFrame:
    """``cells`` with ``COLLAPSED_MARK`` where ``collapsed`` (methods x tasks, 1.0 = collapsed)
    and ``NOT_JUDGED_MARK`` where it is missing (the rule cannot judge); the label prior, one
    label for every item by construction, is not marked (tables taskvec wrote before
    ``answer_diversity`` left it out say it collapsed)."""
    if collapsed is None:
        return cells
    cells = cells.copy()
    for method in cells.index.intersection(collapsed.index).drop("Label prior", errors="ignore"):
        for task in cells.columns.intersection(collapsed.columns):
            verdict = collapsed.loc[method, task]
            sign = COLLAPSED_MARK if verdict == 1.0 else NOT_JUDGED_MARK if pd.isna(verdict) else ""
            if sign:
                cells.loc[method, task] = f"{cells.loc[method, task]} {sign}"
    return cells
