"""``RunResult.summary``: the table ``taskvec run`` prints, from Python, without writing a report."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from taskvec.errors import ConfigError
from taskvec.evaluation.result import RunResult
from taskvec.storage.run_folder import RunFolder


def _result(tmp_path) -> RunResult:
    rows = []
    for seed, xpatch in ((1, [1, 1]), (2, [1, 0])):
        for item in (0, 1):
            for method, ok in (("xpatch", bool(xpatch[item])), ("no_context", False)):
                row = {"task": "t", "seed": seed, "item": item, "method": method}
                rows.append({**row, "paper": ok, "whole_label": ok and item == 0})
    predictions = pd.DataFrame(rows)
    return RunResult(RunFolder(tmp_path), best_layer=3, val_scores=pd.DataFrame(), predictions=predictions)


def test_summary_is_mean_and_std_over_seeds_per_metric(tmp_path):
    result = _result(tmp_path)
    paper = result.summary()
    assert list(paper["mean"].columns) == ["no_context", "xpatch"]
    assert paper.loc["t", ("mean", "xpatch")] == 0.75  # seed 1: 2/2, seed 2: 1/2
    assert paper.loc["t", ("std", "xpatch")] == 0.25
    assert paper.loc["average", ("mean", "no_context")] == 0.0
    assert result.summary("whole_label").loc["t", ("mean", "xpatch")] == 0.5


def test_summary_of_one_seed_has_no_std_and_an_unknown_metric_is_refused(tmp_path):
    result = _result(tmp_path)
    result.predictions = result.predictions[result.predictions.seed == 1]
    assert math.isnan(result.summary().loc["t", ("std", "xpatch")])
    with pytest.raises(ConfigError, match="metric must be one of paper, whole_label.* not 'accuracy'"):
        result.summary("accuracy")
