"""Empty, in a reproduction's answer-diversity tables (``tables/diversity_<style>.*``), the
``collapsed`` cells the collapse rule cannot judge (``scoring.not_judged``: a top answer of at
least half the items on a split whose top label is over half of it), as ``table3_diversity``
writes them since; no model runs. Then ``taskvec report FOLDER`` renders the report again::

    python scripts/mark_unjudged.py docs/reproduce-embedded-vlm docs/reproduce-embedded-vlm-lora
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from taskvec.evaluation.scoring import not_judged
from taskvec.storage.markdown import write_table
from taskvec.tasks.registry import load_task

for folder in map(Path, sys.argv[1:]):
    for path in sorted((folder / "tables").glob("diversity_*.csv")):
        table = pd.read_csv(path, index_col=[0, 1])
        before = table.copy()
        for task in table.columns:
            labels = pd.Series([item.label for item in load_task(task).test])
            share = labels.value_counts().iloc[0] / len(labels)
            for method in table.index.get_level_values("method").unique():
                if method == "Label prior":
                    continue
                top = table.loc[(method, "top_share"), task]
                if not_judged(float(top), float(share)):
                    table.loc[(method, "collapsed"), task] = np.nan
        changed = (before.fillna(-1) != table.fillna(-1)).sum().sum()
        print(path, "cells now not judged:", changed)
        write_table(folder, path.stem, table)
