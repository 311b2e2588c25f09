"""Tables for the reports, as CSV and Markdown: pandas' Markdown, with labels of several levels
made readable."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pandas as pd

from taskvec.storage.run_folder import write_atomic


def fixed(value: float, places: int = 2, sign: bool = False) -> str:
    """``value`` to ``places`` decimals, read from the value first rounded to 9 places, a half
    going to the even digit (as Python and numpy round): a mean that summation left at
    0.14500000000000002 or 0.1449999999 reads 0.14 in every table, report and listing, where
    ``:.2f`` gave 0.15 for one and 0.14 for the other. ``sign``: a plus before a positive value."""
    step = Decimal(1).scaleb(-places)
    rounded = Decimal(repr(round(float(value), 9))).quantize(step, rounding=ROUND_HALF_EVEN)
    rounded = abs(rounded) if rounded == 0 else rounded  # -0.004 reads 0.00, not -0.00
    return format(rounded, f"{'+' if sign else ''}.{places}f")


def markdown_table(frame: pd.DataFrame, index: bool = True) -> str:
    """``frame`` as a Markdown table. Where pandas prints a label of several levels as a Python
    tuple, a row index becomes one column per level and a column label joins its levels with
    " / ". Text cells stay as written (a formatted ``0.10`` is not reparsed into ``0.1``) and a
    missing number is an empty cell. A ``|`` in a cell or label is escaped (``\\|``): a token
    ``'<|endoftext|>'`` or an answer ``dollar | pipe`` ended its cell and pushed the rest along."""
    frame = _pipes_escaped(frame)
    if isinstance(frame.columns, pd.MultiIndex):
        frame = frame.set_axis([" / ".join(map(str, label)) for label in frame.columns], axis=1)
    if index and isinstance(frame.index, pd.MultiIndex):
        names = ["" if name is None else str(name) for name in frame.index.names]
        levels = pd.DataFrame(list(frame.index), columns=names)
        frame = pd.concat([levels, frame.reset_index(drop=True)], axis=1)
        index = False
    first = 1 if index else 0  # tabulate counts the index as a column
    text = [first + i for i, dtype in enumerate(frame.dtypes) if not pd.api.types.is_numeric_dtype(dtype)]
    columns = ([frame.index.to_series()] if index else []) + [frame.iloc[:, i] for i in range(frame.shape[1])]
    align = [_alignment(column) for column in columns]
    if frame.isna().to_numpy().any():  # tabulate leaves out None, not NaN
        frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_markdown(index=index, disable_numparse=text or False, missingval="", colalign=align)


def _pipes_escaped(frame: pd.DataFrame) -> pd.DataFrame:
    def escaped(value):
        return value.replace("|", "\\|") if isinstance(value, str) else value

    frame = frame.rename(index=escaped, columns=escaped)  # a new frame; each level of a label
    for i, dtype in enumerate(frame.dtypes):
        if not pd.api.types.is_numeric_dtype(dtype):
            frame.isetitem(i, frame.iloc[:, i].map(escaped))
    return frame


def _alignment(column: pd.Series) -> str:
    """Numbers on their decimal point, as tabulate aligns them; text that starts as a number
    (``0.37 ± 0.02``) on the right; other text on the left."""
    if pd.api.types.is_numeric_dtype(column.dtype):
        return "decimal"
    values = column.dropna().astype(str)
    values = values[values != ""]  # an empty cell says nothing of its column
    numbers = not values.empty and values.str.match(r"-?\d").all()
    return "right" if numbers else "left"


def write_table(root: Path, name: str, frame: pd.DataFrame, index: bool = True) -> str:
    """``frame`` as ``root/tables/<name>.csv`` and, beside it, as Markdown (``.md``), each written
    atomically; returns the Markdown."""
    csv_path = Path(root) / "tables" / f"{name}.csv"
    write_atomic(csv_path, frame.to_csv(index=index))
    markdown = markdown_table(frame, index=index)
    write_atomic(csv_path.with_suffix(".md"), markdown + "\n")
    return markdown
