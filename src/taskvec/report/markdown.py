"""Markdown tables for the reports: pandas' own, with labels of several levels made readable."""

from __future__ import annotations

import pandas as pd


def markdown_table(frame: pd.DataFrame, index: bool = True) -> str:
    """``frame`` as a Markdown table. Where pandas prints a label of several levels as a Python
    tuple, a row index becomes one column per level and a column label joins its levels with
    " / "."""
    if isinstance(frame.columns, pd.MultiIndex):
        frame = frame.set_axis([" / ".join(map(str, label)) for label in frame.columns], axis=1)
    if index and isinstance(frame.index, pd.MultiIndex):
        names = ["" if name is None else str(name) for name in frame.index.names]
        levels = pd.DataFrame(list(frame.index), columns=names)
        frame = pd.concat([levels, frame.reset_index(drop=True)], axis=1)
        index = False
    return frame.to_markdown(index=index)
