"""Turn units of predictions into scores, the validation curve, the chosen layer and the table."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from taskvec.evaluation.metrics import (
    FIRST_TOKEN_METRICS,
    exact_match,
    first_token_scores,
    paper_match,
)

METHODS = ("no_context", "majority", "xbase", "xpatch")


def select_layer(curve: dict[int, float]) -> int:
    """The layer with the best mean validation accuracy; ties go to the lowest layer."""
    if not curve:
        raise ValueError("no layers to choose from")
    best = max(curve.values())
    return min(layer for layer, score in curve.items() if score == best)


def _first_token(prediction: str, row: dict) -> dict[str, bool]:
    tokens = row["label_first_tokens"]
    return first_token_scores(prediction, row["answers"], lambda _text: tokens)


def _majority(label: str, row: dict) -> dict[str, bool]:
    """The majority baseline predicts a whole label, so it is scored as a string."""
    answers = row["answers"]
    return {
        "paper": paper_match(label, answers[:1], True),
        "paper_ci": paper_match(label, answers[:1], False),
        "strict": exact_match(label, answers),
        "exact": exact_match(label, answers),
    }


def layer_scores(units: Iterable[dict], split: str) -> pd.DataFrame:
    """xPatch correctness per (task, seed, item, layer, metric) on one split (none for a test
    split swept at the chosen layer only)."""
    records = []
    for unit in units:
        layers = unit.get("test_layers", unit["layers"]) if split == "test" else unit["layers"]
        for row in unit[split]:
            for layer, prediction in zip(layers, row["xpatch"], strict=True):
                for metric, ok in _first_token(prediction, row).items():
                    records.append((unit["task"], unit["seed"], row["id"], layer, metric, ok))
    return pd.DataFrame.from_records(records, columns=["task", "seed", "item", "layer", "metric", "correct"])


def layer_curve(scores: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Accuracy per (task, layer), averaged over items then seeds; plus an ``average`` row."""
    chosen = scores[scores.metric == metric]
    per_seed = chosen.groupby(["task", "seed", "layer"]).correct.mean()
    per_task = per_seed.groupby(["task", "layer"]).mean().unstack("layer")
    per_task.loc["average"] = per_task.mean(axis=0)
    return per_task


def choose_layer(val_scores: pd.DataFrame, metric: str) -> int:
    """Best mean validation accuracy across tasks (and seeds); ties go to the lowest layer."""
    curve = layer_curve(val_scores, metric).loc["average"]
    return select_layer({int(layer): float(score) for layer, score in curve.items()})


def split_predictions(units: Iterable[dict], layer: int, patched_answers: dict) -> pd.DataFrame:
    """One row per (task, seed, item, method) on the test split, with every metric.

    ``patched_answers[(task, seed)]`` holds each test item's xPatch ``(first token, answer)`` at
    ``layer``; the first token comes from the unit's test sweep when it has one."""
    records = []
    for unit in units:
        swept = layer in unit.get("test_layers", unit["layers"])
        column = unit.get("test_layers", unit["layers"]).index(layer) if swept else None
        answers = patched_answers.get((unit["task"], unit["seed"]), [])
        for i, row in enumerate(unit["test"]):
            base = {
                "task": unit["task"],
                "seed": unit["seed"],
                "item": row["id"],
                "input": row["input"],
                "label": row["label"],
            }
            methods = {
                "no_context": (row["no_context"], row["no_context_answer"]),
                "xbase": (row["xbase"], row["xbase_answer"]),
                "xpatch": (
                    row["xpatch"][column] if swept else answers[i][0],
                    answers[i][1] if answers else None,
                ),
            }
            for method, (first, full) in methods.items():
                scores = _first_token(first, row)
                scores["exact"] = exact_match(full, row["answers"]) if full is not None else None
                records.append({**base, "method": method, "prediction": first, "answer": full, **scores})
            if row["majority"]:
                records.append(
                    {
                        **base,
                        "method": "majority",
                        "prediction": row["majority"],
                        "answer": row["majority"],
                        **_majority(row["majority"], row),
                    }
                )
    return pd.DataFrame.from_records(records)


def summary_table(predictions: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std over seeds of per-(task, seed) accuracy: rows tasks (+average), columns methods."""
    if predictions[metric].isna().all():
        return pd.DataFrame()
    per_seed = (
        predictions.dropna(subset=[metric])
        .assign(correct=lambda d: d[metric].astype(float))
        .groupby(["task", "method", "seed"])
        .correct.mean()
    )
    per_task_seed = per_seed.unstack("method")
    average = per_task_seed.groupby("seed").mean()
    average["task"] = "average"
    average = average.reset_index().set_index(["task", "seed"])
    full = pd.concat([per_task_seed, average])
    mean = full.groupby("task").mean()
    std = full.groupby("task").std(ddof=0)
    order = [m for m in METHODS if m in mean.columns]
    tasks = [t for t in dict.fromkeys(predictions.task) if t in mean.index] + ["average"]
    return pd.concat({"mean": mean.loc[tasks, order], "std": std.loc[tasks, order]}, axis=1)


__all__ = [
    "FIRST_TOKEN_METRICS",
    "METHODS",
    "choose_layer",
    "layer_curve",
    "layer_scores",
    "summary_table",
    "split_predictions",
]
