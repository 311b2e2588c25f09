"""Tables for the reports, as CSV and Markdown: pandas' Markdown, with labels of several levels
made readable."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from taskvec.storage.run_folder import write_atomic


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


def write_table(root: Path, name: str, frame: pd.DataFrame, index: bool = True) -> str:
    """``frame`` as ``root/tables/<name>.csv`` and, beside it, as Markdown (``.md``), each written
    atomically; returns the Markdown."""
    csv_path = Path(root) / "tables" / f"{name}.csv"
    write_atomic(csv_path, frame.to_csv(index=index))
    markdown = markdown_table(frame, index=index)
    write_atomic(csv_path.with_suffix(".md"), markdown + "\n")
    return markdown
