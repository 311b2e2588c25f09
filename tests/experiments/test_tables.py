"""The paper-style tables are arithmetic on per-item predictions: checked on a constructed case."""

from __future__ import annotations

import pandas as pd
import pytest

from taskvec.evaluation.result import RunResult
from taskvec.experiments.conditions import Condition, matrix, paper_conditions, table3_with_std


def _predictions(correct: dict[tuple[str, int, str], list[bool]]) -> pd.DataFrame:
    """Rows of (task, seed, method) -> per-item correctness, under every metric alike."""
    rows = []
    for (task, seed, method), items in correct.items():
        for i, ok in enumerate(items):
            rows.append(
                {
                    "task": task,
                    "seed": seed,
                    "item": f"{task}-{i}",
                    "method": method,
                    "paper": ok,
                    "paper_ci": ok,
                    "strict": ok,
                    "exact": ok,
                }
            )
    return pd.DataFrame(rows)


def _result(correct, layer: int = 7) -> RunResult:
    return RunResult(
        folder=None, best_layer=layer, val_scores=pd.DataFrame(), predictions=_predictions(correct)
    )


def _case():
    # two tasks, two seeds; four test items each
    text = {
        ("capital", 1, "no_context"): [False, False, False, True],  # 0.25
        ("capital", 2, "no_context"): [False, False, False, False],  # 0.0
        ("colour", 1, "no_context"): [False, False, False, False],
        ("colour", 2, "no_context"): [False, False, False, False],
        ("capital", 1, "majority"): [True, False, False, False],  # 0.25
        ("capital", 2, "majority"): [True, True, False, False],  # 0.5
        ("colour", 1, "majority"): [True, True, True, True],  # 1.0
        ("colour", 2, "majority"): [False, False, False, False],  # 0.0
        ("capital", 1, "xbase"): [True] * 4,
        ("capital", 2, "xbase"): [True] * 4,
        ("colour", 1, "xbase"): [False] * 4,
        ("colour", 2, "xbase"): [False] * 4,
        ("capital", 1, "xpatch"): [True, True, True, False],
        ("capital", 2, "xpatch"): [True, True, True, False],
        ("colour", 1, "xpatch"): [True, False, False, False],
        ("colour", 2, "xpatch"): [True, True, True, False],
    }
    image = {key: [not ok for ok in value] for key, value in text.items()}
    return {
        Condition("text-icl", "image", "noto"): _result(text, layer=7),
        Condition("image-icl", "image", "noto"): _result(image, layer=3),
    }


def test_table3_rows_come_from_the_right_condition_and_method():
    mean, std = table3_with_std(_case(), "noto", "paper")
    assert mean.loc["No Context", "capital"] == pytest.approx(0.125)
    assert std.loc["No Context", "capital"] == pytest.approx(0.125)
    assert mean.loc["Majority", "capital"] == pytest.approx(0.375)
    assert mean.loc["Majority", "colour"] == pytest.approx(0.5)
    # the average over tasks is taken per seed first: seed 1 (0.25 + 1.0) / 2, seed 2 (0.5 + 0) / 2
    assert mean.loc["Majority", "average"] == pytest.approx((0.625 + 0.25) / 2)
    assert mean.loc["Text ICL xBase", "capital"] == 1.0
    assert mean.loc["Image ICL Base", "capital"] == 0.0  # the image condition's own xBase
    assert mean.loc["Text ICL xPatch", "colour"] == pytest.approx(0.5)
    assert mean.loc["Image ICL Patch", "colour"] == pytest.approx(0.5)


def test_matrix_names_cross_modal_rows_and_keeps_the_chosen_layer():
    table = matrix(_case(), "paper")
    assert table.loc[("Text ICL -> image (noto)", "xPatch"), "layer"] == 7
    assert table.loc[("Image ICL (noto) -> image (noto)", "Patch"), "layer"] == 3


def test_every_condition_of_the_matrix_is_run_once_per_style():
    conditions = paper_conditions(["noto", "openmoji"])
    assert len(conditions) == len(set(conditions)) == 10
    image = [c for c in conditions if c.query == "image" or c.spec == "image-icl"]
    assert {c.style for c in image} == {"noto", "openmoji"}
    assert all(c.style is None for c in conditions if c not in image)
