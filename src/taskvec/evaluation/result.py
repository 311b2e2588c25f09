"""What a protocol run gives back: its folder, the chosen layer(s), the validation scores and the
test predictions (the rows of ``predictions.jsonl``); all a report of the run is written from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from taskvec.errors import ConfigError
from taskvec.evaluation.metrics import METRICS
from taskvec.evaluation.scoring import summary_table
from taskvec.storage.run_folder import RunFolder

if TYPE_CHECKING:
    from taskvec.evaluation.protocol import ExperimentConfig


@dataclass
class RunResult:
    folder: RunFolder
    #: the best layer of the tasks' mean validation curve: where every task's xPatch is read
    #: under ``layer_selection="shared"`` (the default)
    best_layer: int
    val_scores: pd.DataFrame
    predictions: pd.DataFrame
    #: the layer each task's xPatch was read at (empty: ``best_layer`` for every task)
    task_layers: dict[str, int] = field(default_factory=dict)
    layer_selection: str = "shared"
    #: xPatch on the test split at every layer (empty unless ``test_layers="all"``)
    test_scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the run's configuration (None for a result put together by hand)
    config: ExperimentConfig | None = None
    #: what was said about the run's inputs while it was computed (``ResultWarning``s: a label the
    #: answer budget cuts, a prompt past the trained context), as results.json records them
    warnings: list[str] = field(default_factory=list)

    def layer_for(self, task: str) -> int:
        """The layer ``task``'s xPatch was read at."""
        return self.task_layers.get(task, self.best_layer)

    def summary(self, metric: str = "paper") -> pd.DataFrame:
        """The test table ``taskvec run`` prints for ``metric``: tasks (and their average) by
        methods, mean and std over seeds (std NaN for one seed)."""
        if metric not in METRICS:
            raise ConfigError(f"summary: metric must be one of {', '.join(METRICS)}, not {metric!r}")
        return summary_table(self.predictions, metric)
