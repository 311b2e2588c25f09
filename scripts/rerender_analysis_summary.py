"""Bring a finished analysis's ``summary.md`` up to today's wording from its own tables, without the
model: its decodings table and its similarity sentence are written again by the functions a new
analysis uses; the rest of the file is kept.

    python scripts/rerender_analysis_summary.py docs/reproduce-embedded-vlm/analysis

Used for the analyses committed under ``docs/``, whose folders keep no vectors to run them again.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

from taskvec.analysis.lens import decodings_table, layer_ranges
from taskvec.report.analysis import CLEAR_MARGIN, similarity_sentence
from taskvec.storage.markdown import markdown_table


def rerender(folder: Path) -> None:
    tables = folder / "tables"
    summary = (folder / "summary.md").read_text()
    layer = int(re.search(r"- layer \*\*(\d+)\*\*", summary).group(1))
    tasks = re.search(r"- tasks: ([^;]+);", summary).group(1).split(", ")
    specs = re.search(r"specifications: (.+)", summary).group(1).split(", ")

    old = pd.read_csv(tables / "decodings_table.csv", index_col=0)
    table = decodings_table(pd.read_csv(tables / "decodings.csv", keep_default_na=False))[old.columns]
    (tables / "decodings_table.csv").write_text(table.to_csv(index=True))
    shown = markdown_table(table, index=True)
    (tables / "decodings_table.md").write_text(shown + "\n")
    heading = "## Task-vector decodings at layer"
    start = summary.index("| task ", summary.index(heading))
    end = summary.index("\n\n", start)
    summary = summary[:start] + shown + summary[end:]

    by_layer = pd.read_csv(tables / "similarity_by_layer.csv", index_col=0)
    above = layer_ranges(by_layer.index[by_layer["margin"] >= CLEAR_MARGIN].tolist())
    sentence = similarity_sentence(layer, by_layer.loc[layer], by_layer, above, len(tasks), len(specs))
    start = summary.index("\n\n", summary.index("## Similarity")) + 2
    end = summary.index("\n", start)
    summary = summary[:start] + sentence + summary[end:]
    (folder / "summary.md").write_text(summary)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        rerender(Path(name))
