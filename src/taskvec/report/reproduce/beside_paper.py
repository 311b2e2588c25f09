"""Our tables with the paper's numbers set under our rows: Table 3, the specification x query
matrix (Table 10) and Table 4."""

from __future__ import annotations

import re

import pandas as pd

from taskvec.experiments import paper
from taskvec.experiments.conditions import TOP_LABEL_ROW
from taskvec.report.reproduce.layout import mark, number
from taskvec.report.tables import mean_std_cells


def _paper_values(values: tuple[float, ...], columns) -> list[str]:
    """A paper row under ours: blank where it has no value, its average only over our tasks."""
    published = paper.over_tasks(values, columns)
    return [number(published[c], 2) if c in published else "" for c in columns]


def table3_beside_paper(
    mean: pd.DataFrame,
    std: pd.DataFrame,
    whole: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    collapsed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Our Table 3 (mean ± std) with, under each of our rows, ours by the whole-label metric
    (``whole``: its mean and std) and the paper's rows of the same name (one per model; the
    paper's 'Random' row under Majority). ``collapsed`` (methods x tasks, 1.0 where a method's
    answers collapsed) marks our cells. ``TOP_LABEL_ROW`` is a reference, not a method: its
    source says so. Index: (method, source)."""
    ours = mark(mean_std_cells(mean, std), collapsed)
    whole_cells = mark(mean_std_cells(*whole), collapsed) if whole is not None else None
    rows, index = [], []
    for method, cells in ours.iterrows():
        if method == TOP_LABEL_ROW:
            rows.append([number(v, 2) for v in mean.loc[method]])
            index.append((method, "reference"))
            continue
        rows.append(list(cells))
        index.append((method, "ours"))
        if whole_cells is not None and method in whole_cells.index:
            rows.append(list(whole_cells.loc[method]))
            index.append((method, "ours, whole_label"))
        published = [(m, table.get(method)) for m, table in paper.TABLE3.items()]
        if method == "Majority":
            published = [("'Random' row, all models", paper.MAJORITY)]
        for model, values in published:
            if values is not None:
                rows.append(_paper_values(values, ours.columns))
                index.append((method, f"paper: {model}"))
    return pd.DataFrame(
        rows, columns=ours.columns, index=pd.MultiIndex.from_tuples(index, names=["method", "source"])
    )


def _layer_cell(value) -> str:
    """A matrix row's layer: one number, or per-task layers (``"9/11/12"``) as they are."""
    try:
        return number(int(value), 0)
    except (TypeError, ValueError):
        return str(value)


def _matrix_cells(values: pd.Series, patched: bool) -> list[str]:
    """One matrix row's cells; a Base / xBase row shows no layer, as nothing was patched into it
    (the table's file keeps the condition's layer on every row)."""
    return [(_layer_cell(v) if patched else "") if c == "layer" else number(v, 3) for c, v in values.items()]


def matrix_beside_paper(table: pd.DataFrame, whole: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our specification x query matrix with, under each of our rows, the same by the whole-label
    metric (``whole``, if given) and the paper's patch rows (appendix) under our patch row of the
    same specification and query. Index: (condition, method, source)."""
    columns = list(table.columns)
    rows, index = [], []
    for (condition, method), values in table.iterrows():
        patched = method in ("Patch", "xPatch")
        rows.append(_matrix_cells(values, patched))
        index.append((condition, method, "ours"))
        if whole is not None and (condition, method) in whole.index:
            rows.append(_matrix_cells(whole.loc[(condition, method)], patched))
            index.append((condition, method, "ours, whole_label"))
        generic = re.sub(r" \([^)]*\)", "", condition)
        if patched:
            for model, published in paper.MATRIX.items():
                if generic in published:
                    rows.append([""] + _paper_values(published[generic], columns[1:]))
                    index.append((condition, method, f"paper: {model}"))
    names = ["condition", "method", "source"]
    return pd.DataFrame(rows, columns=columns, index=pd.MultiIndex.from_tuples(index, names=names))


def table4_beside_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Our Table 4 (per style) and the paper's (per model) in one table. Index: (source, vectors)."""
    rows, index = [], []
    for (style, vectors), values in table.iterrows():
        rows.append([number(v, 3) for v in values])
        index.append((f"ours ({style})", vectors))
    for model, published in paper.TABLE4.items():
        for vectors, values in published.items():
            rows.append(_paper_values(values, table.columns))
            index.append((f"paper: {model}", vectors))
    return pd.DataFrame(
        rows, columns=table.columns, index=pd.MultiIndex.from_tuples(index, names=["source", "vectors"])
    )
