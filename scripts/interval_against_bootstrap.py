"""The claims' 95% intervals (``evaluation.uncertainty.paired_difference``, a normal approximation)
against a bootstrap over the test items, resampled within each task, on a finished reproduction's
predictions (docs/metrics.md quotes its output)::

    python scripts/interval_against_bootstrap.py runs/reproduce-embedded-vlm-lora
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from taskvec.evaluation.uncertainty import paired_difference

#: (condition of A, condition of B, B's method): A is Text ICL xPatch on image queries in `noto`
PAIRS = (
    ("text-icl__image-noto", "text-icl__image-noto", "xbase"),
    ("text-icl__image-noto", "image-icl__image-noto", "xpatch"),
    ("text-icl__image-noto", "text-icl__image-noto", "label_prior"),
)


def predictions(folder: Path, condition: str, method: str) -> pd.DataFrame:
    path = folder / "conditions" / condition / "predictions.jsonl"
    rows = pd.DataFrame(json.loads(line) for line in path.read_text().splitlines())
    return rows[rows.method == method]


def bootstrap(a: pd.DataFrame, b: pd.DataFrame, metric: str, draws: int, seed: int) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the mean over tasks of each task's mean paired
    difference, items drawn with replacement within each task."""
    per_item = [rows.groupby(["task", "item"])[metric].mean().astype(float) for rows in (a, b)]
    by_task = [group.to_numpy() for _, group in (per_item[0] - per_item[1]).dropna().groupby(level="task")]
    generator = np.random.default_rng(seed)
    means = [np.mean([generator.choice(d, len(d)).mean() for d in by_task]) for _ in range(draws)]
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a finished `taskvec reproduce` folder")
    parser.add_argument("--draws", type=int, default=4000)
    args = parser.parse_args()
    for a_condition, b_condition, b_method in PAIRS:
        a = predictions(args.folder, a_condition, "xpatch")
        b = predictions(args.folder, b_condition, b_method)
        for metric in ("paper", "whole_label"):
            found = paired_difference(a, b, metric)
            low, high = bootstrap(a, b, metric, args.draws, seed=0)
            print(
                f"xPatch - {b_condition.split('__')[0]} {b_method} ({metric}): {found.mean:+.4f}, "
                f"normal [{found.low:+.4f}, {found.high:+.4f}], bootstrap [{low:+.4f}, {high:+.4f}]"
            )


if __name__ == "__main__":
    main()
