"""Turn units of predictions into scores, the validation curve, the chosen layer(s), the table,
and the answer diversity that tells a method that knows the task from one that has collapsed.

Baselines beside the methods: ``no_context`` (the bare query), ``majority`` (the majority label of
each prompt's demonstrations) and ``label_prior`` (the most frequent *validation* label, answered
for every test item: what knowing the label distribution alone scores).

Layer selection (``LAYER_SELECTIONS``): ``shared``, the paper's protocol, picks one layer for all
tasks of a run on their mean validation curve, so a task's number depends on the tasks run beside
it; ``per-task`` picks each task's best layer on its own validation curve.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Literal, get_args

import pandas as pd

from taskvec.errors import ConfigError
from taskvec.evaluation.metrics import (
    FIRST_TOKEN_METRICS,
    answer_scores,
    first_token_scores,
    paper_match,
)
from taskvec.prompts.template import majority_label
from taskvec.tasks.task import AVERAGE

METHODS = ("no_context", "majority", "label_prior", "xbase", "xpatch")
LayerSelection = Literal["shared", "per-task"]
LAYER_SELECTIONS: tuple[str, ...] = get_args(LayerSelection)
#: answer collapse: the top answer covers at least this share of a (task, seed)'s items ...
COLLAPSE_SHARE = 0.5
#: ... and at least this many times the test split's top-label share
COLLAPSE_RATIO = 2.0
#: accuracies closer than this are equal: the same 5/12 summed in another order differs in its last bit
TIE_TOLERANCE = 1e-9


def select_layer(curve: dict[int, float]) -> int:
    """The layer with the best mean validation accuracy; ties (within ``TIE_TOLERANCE``, so
    rounding noise never breaks one) go to the lowest layer."""
    if not curve:
        raise ValueError("no layers to choose from")
    best = max(curve.values())
    return min(layer for layer, score in curve.items() if score >= best - TIE_TOLERANCE)


def _first_token(prediction: str, row: dict) -> dict[str, bool]:
    tokens = row["label_first_tokens"]
    return first_token_scores(prediction, row["answers"], lambda _text: tokens)


def _whole_label(label: str, row: dict, over_budget: Collection[str] = ()) -> dict[str, bool]:
    """A baseline that answers a whole label (majority, label prior) is scored as a string; its
    ``strict`` is ``exact`` (a label is its own first token only if it is the same label). A label
    ``over_budget`` (longer than the answer budget) is written only in part, as a model's answer
    is: whole_label and exact cannot credit it."""
    answers = row["answers"]
    scores = answer_scores(label, answers)
    if label in over_budget:
        scores = dict.fromkeys(scores, False)
    return {
        "paper": paper_match(label, answers[:1], True),
        "paper_ci": paper_match(label, answers[:1], False),
        "strict": scores["exact"],
        **scores,
    }


def label_prior(unit: dict) -> str:
    """The most frequent label of the unit's validation split (ties: the first to occur), the
    ``label_prior`` baseline's answer to every test item."""
    return majority_label([row["answers"][0] for row in unit["val"]])


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
    """Accuracy per (task, layer), averaged over items then seeds; plus an ``average`` row. Tasks
    keep the scores' order (the command's), as every other table of a run does."""
    chosen = scores[scores.metric == metric]
    per_seed = chosen.groupby(["task", "seed", "layer"]).correct.mean()
    per_task = per_seed.groupby(["task", "layer"]).mean().unstack("layer")
    per_task = per_task.loc[list(dict.fromkeys(chosen.task))]
    per_task.loc[AVERAGE] = per_task.mean(axis=0)
    return per_task


def _best(curve: pd.Series) -> int:
    return select_layer({int(layer): float(score) for layer, score in curve.items()})


def choose_layer(val_scores: pd.DataFrame, metric: str) -> int:
    """Best mean validation accuracy across tasks (and seeds); ties go to the lowest layer."""
    return _best(layer_curve(val_scores, metric).loc[AVERAGE])


def flat_selection_curves(
    val_scores: pd.DataFrame, metric: str, selection: LayerSelection
) -> dict[str, float]:
    """The validation curves the layer was chosen on (``shared``: the tasks' mean, ``average``;
    ``per-task``: each task's) that are flat over more than one layer, each with its one value:
    there the tie rule, not the data, picked the layer (the lowest), and a report must say so."""
    curves = _selection_curves(val_scores, metric, selection)
    return {row: float(curve.iloc[0]) for row, curve in curves.items() if _is_flat(curve)}


def tied_selection_curves(
    val_scores: pd.DataFrame, metric: str, selection: LayerSelection
) -> dict[str, list[int]]:
    """The selection curves, not flat, whose best value several layers share, each with those
    layers: the tie rule picked the lowest of them, and the data could not choose among them."""
    tied = {}
    for row, curve in _selection_curves(val_scores, metric, selection).items():
        best = float(curve.max())
        layers = [int(layer) for layer, value in curve.items() if value >= best - TIE_TOLERANCE]
        if len(layers) > 1 and not _is_flat(curve):
            tied[row] = layers
    return tied


def _selection_curves(
    val_scores: pd.DataFrame, metric: str, selection: LayerSelection
) -> dict[str, pd.Series]:
    """The validation curves a run's layer(s) were chosen on, over more than one layer: the tasks'
    mean (``shared``) or each task's (``per-task``)."""
    curve = layer_curve(val_scores, metric)
    if curve.shape[1] < 2:
        return {}
    rows = [AVERAGE] if selection == "shared" else [task for task in curve.index if task != AVERAGE]
    return {row: curve.loc[row] for row in rows}


def _is_flat(curve: pd.Series) -> bool:
    """One value at every layer, up to rounding noise (``TIE_TOLERANCE``)."""
    return float(curve.max() - curve.min()) <= TIE_TOLERANCE


def choose_layers(val_scores: pd.DataFrame, metric: str, selection: LayerSelection) -> dict[str, int]:
    """The layer each task's xPatch is read at: ``shared``, the best of the tasks' mean validation
    curve for all of them (``choose_layer``); ``per-task``, the best of each task's own validation
    curve (its seeds' mean). Ties go to the lowest layer. Returns ``{task: layer}``."""
    if selection not in LAYER_SELECTIONS:
        raise ConfigError(f"layer selection must be one of {LAYER_SELECTIONS}, got {selection!r}")
    curve = layer_curve(val_scores, metric)
    tasks = list(dict.fromkeys(val_scores.task))
    if selection == "shared":
        layer = _best(curve.loc[AVERAGE])
        return {task: layer for task in tasks}
    return {task: _best(curve.loc[task]) for task in tasks}


def split_predictions(
    units: Iterable[dict], layers: int | Mapping[str, int], patched_answers: dict
) -> pd.DataFrame:
    """One row per (task, seed, item, method) on the test split, with every metric.

    ``layers``: the layer each task's xPatch was read at (one int: the same for every task).
    ``patched_answers[(task, seed)]`` holds each test item's xPatch ``(first token, answer)`` at
    that layer; the first token comes from the unit's test sweep when it has one."""
    records = []
    for unit in units:
        layer = layers if isinstance(layers, int) else layers[unit["task"]]
        prior = label_prior(unit)
        over_budget = set(unit.get("labels_over_budget", ()))  # an older taskvec's unit records none
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
                scores: dict[str, bool | None] = {**_first_token(first, row)}
                if full is not None:
                    scores.update(answer_scores(full, row["answers"]))
                else:
                    scores.update(whole_label=None, exact=None)
                records.append({**base, "method": method, "prediction": first, "answer": full, **scores})
            baselines = {"majority": row["majority"], "label_prior": prior}
            for method, label in baselines.items():
                if label:  # an instruction has no demonstrations, so no majority
                    records.append(
                        {
                            **base,
                            "method": method,
                            "prediction": label,
                            "answer": label,
                            **_whole_label(label, row, over_budget),
                        }
                    )
    return pd.DataFrame.from_records(records)


def _answer_key(prediction: str, answer: str | None = None) -> str:
    """The answer diversity counts: the first token, stripped and case-folded; a blank first token
    (a space or a newline before the answer) says nothing of the answer, so there the first
    non-blank word of the whole answer stands for it (``" 1.1"``, ``"\nA:"`` are two answers,
    not one blank one)."""
    key = str(prediction).strip().lower()
    if not key and isinstance(answer, str) and answer.split():
        return answer.split()[0].lower()
    return key


def top_label_share(predictions: pd.DataFrame) -> pd.Series:
    """Per task, the share of its test items that carry the split's most frequent label."""
    items = predictions.drop_duplicates(["task", "item"])
    return items.groupby("task", sort=False).label.agg(
        lambda labels: labels.value_counts().iloc[0] / len(labels)
    )


def answer_diversity(predictions: pd.DataFrame) -> pd.DataFrame:
    """How varied each method's answers are, per (task, method), on the test split.

    The answer is the ``prediction`` the first-token metrics score (stripped, case-folded): the
    first generated token, or the whole label a baseline answers; a blank first token is keyed by
    the first non-blank word of its ``answer`` (``_answer_key``). Columns: ``distinct`` (distinct
    answers / items) and ``top_share`` (the top answer's share of items), each a (task, seed)'s
    value averaged over seeds; ``top_answer`` (over all seeds); ``label_share`` (the test split's
    top-label share, what answering one label can score at most); ``collapsed``: ``top_share >=
    COLLAPSE_SHARE`` and ``>= COLLAPSE_RATIO x label_share`` (a method that answers one thing for
    most items, far more often than any label occurs); never the label prior, a baseline that
    answers one label by construction. It is missing (``pd.NA``, a nullable boolean) where the
    rule cannot judge (``not_judged``): a method that answers one thing for most items of a split
    whose top label is over half of it might know the items or answer that label for all of them.
    Rows follow the tasks' and ``METHODS``' order."""
    columns = ["task", "method", "items", "distinct", "top_share", "top_answer", "label_share", "collapsed"]
    if predictions.empty:
        return pd.DataFrame(columns=columns).set_index(["task", "method"])
    shares = top_label_share(predictions)
    answers = predictions["answer"] if "answer" in predictions else [None] * len(predictions)
    keyed = predictions.assign(
        key=[_answer_key(p, a) for p, a in zip(predictions.prediction, answers, strict=True)]
    )
    rows = []
    for (task, method), group in keyed.groupby(["task", "method"], sort=False):
        per_seed = group.groupby("seed").key.agg(
            items="size", distinct="nunique", top=lambda keys: keys.value_counts().iloc[0]
        )
        top_share = float((per_seed.top / per_seed["items"]).mean())
        label_share = float(shares[task])
        rows.append(
            {
                "task": task,
                "method": method,
                "items": int(per_seed["items"].iloc[0]),
                "distinct": float((per_seed.distinct / per_seed["items"]).mean()),
                "top_share": top_share,
                "top_answer": group.key.value_counts().index[0],
                "label_share": label_share,
                "collapsed": _collapse_verdict(method, top_share, label_share),
            }
        )
    frame = pd.DataFrame(rows, columns=columns).astype({"collapsed": "boolean"})
    order = {m: i for i, m in enumerate(METHODS)}
    tasks = {t: i for i, t in enumerate(dict.fromkeys(predictions.task))}
    frame = frame.sort_values(["task", "method"], key=lambda c: c.map(tasks if c.name == "task" else order))
    return frame.set_index(["task", "method"])


def is_collapsed(top_share: float, label_share: float) -> bool:
    """The collapse rule: the top answer covers at least half the items and at least twice the
    share of the split's most frequent label."""
    return top_share >= COLLAPSE_SHARE and top_share >= COLLAPSE_RATIO * label_share


def _collapse_verdict(method: str, top_share: float, label_share: float) -> bool | None:
    if method == "label_prior":
        return False
    if not_judged(top_share, label_share):
        return None
    return is_collapsed(top_share, label_share)


def not_judged(top_share: float, label_share: float) -> bool:
    """Answers the rule can neither flag nor clear: one answer covers at least ``COLLAPSE_SHARE``
    of the items on a split where the rule can flag nothing (``collapse_undetectable``)."""
    return top_share >= COLLAPSE_SHARE and collapse_undetectable(label_share)


def collapse_undetectable(label_share: float) -> bool:
    """Whether the rule cannot flag a collapse on this split: where its most frequent label is over
    half of it, no answer's share can reach twice that, so a method answering one label for every
    item passes unflagged (it scores the label prior: compare with that row instead)."""
    return COLLAPSE_RATIO * label_share > 1.0


def summary_table(predictions: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std over seeds of per-(task, seed) accuracy: rows tasks (+average), columns methods;
    the std is NaN where a cell has one seed."""
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
    average["task"] = AVERAGE
    average = average.reset_index().set_index(["task", "seed"])
    full = pd.concat([per_task_seed, average])
    by_task = full.groupby("task")
    mean = by_task.mean()
    # one seed has no spread: its std is missing (NaN), not a reassuring 0
    std = by_task.std(ddof=0).where(by_task.count() > 1)
    order = [m for m in METHODS if m in mean.columns]
    tasks = [t for t in dict.fromkeys(predictions.task) if t in mean.index] + [AVERAGE]
    return pd.concat({"mean": mean.loc[tasks, order], "std": std.loc[tasks, order]}, axis=1)


__all__ = [
    "FIRST_TOKEN_METRICS",
    "LAYER_SELECTIONS",
    "METHODS",
    "answer_diversity",
    "choose_layer",
    "choose_layers",
    "is_collapsed",
    "label_prior",
    "top_label_share",
    "layer_curve",
    "layer_scores",
    "summary_table",
    "split_predictions",
]
