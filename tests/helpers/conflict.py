"""Constructed rows of Fig. 9's conflict, as ``conflict_rows`` writes them."""

from __future__ import annotations

import pandas as pd

from taskvec.experiments.conflict import FIT_COLUMNS, metric_column


def conflict_rows_of(
    wins: list[bool], wins_whole: list[bool], echoes: list[bool] | None = None
) -> pd.DataFrame:
    """One direction's items: the patched run fits the patched task (``wins`` by the paper's rule,
    ``wins_whole`` by the whole label), the control by the paper's rule where ``echoes``."""
    n = len(wins)
    rows = pd.DataFrame({"prompted": "a", "patched": "b", "input": [f"i{k}" for k in range(n)]})
    for column in FIT_COLUMNS:
        rows[column] = False
    rows["fits_patched"], rows[metric_column("fits_patched", "whole_label")] = wins, wins_whole
    rows["control_fits_patched"] = echoes or [False] * n
    return rows
