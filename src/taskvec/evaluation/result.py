"""What a protocol run gives back: its folder, the chosen layer, the validation scores and the
test predictions (the rows of ``predictions.jsonl``)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from taskvec.storage.run_folder import RunFolder


@dataclass
class RunResult:
    folder: RunFolder
    best_layer: int
    val_scores: pd.DataFrame
    predictions: pd.DataFrame
