"""The specification x query matrix (the paper's Tables 3 and 10), one protocol run per cell.

A *condition* is how the task is specified (text examples, image examples, an instruction) and
how it is queried (text or image), with the image style where images appear. Each condition is
an ordinary :func:`taskvec.evaluate` run in its own folder (``pipelines.reproduce.run_conditions``),
so it validates, resumes and writes its tables like any run; the tables here only rearrange their
test summaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.evaluation.result import RunResult
from taskvec.evaluation.scoring import answer_diversity, summary_table, top_label_share
from taskvec.tasks.images import DEFAULT_STYLE

SPEC_NAMES = {"text-icl": "Text ICL", "image-icl": "Image ICL", "instruction": "Instruction"}


@dataclass(frozen=True)
class Condition:
    """One cell of the specification x query matrix."""

    spec: str  # "text-icl" | "image-icl" | "instruction"
    query: str  # "text" | "image"
    style: str | None = None  # image style wherever images appear (demos and/or query)

    @property
    def name(self) -> str:
        style = f"-{self.style}" if self.style else ""
        return f"{self.spec}__{self.query}{style}"

    @property
    def cross_modal(self) -> bool:
        """Examples in one modality, the query in the other."""
        if self.spec == "instruction":
            return False
        return (self.spec == "text-icl") != (self.query == "text")

    @property
    def label(self) -> str:
        query = f"{self.query} ({self.style})" if self.query == "image" else "text"
        demos = SPEC_NAMES[self.spec] + (f" ({self.style})" if self.spec == "image-icl" else "")
        return f"{demos} -> {query}"

    def config(self, **options) -> ExperimentConfig:
        return ExperimentConfig.create(
            spec=self.spec, query=self.query, style=self.style or DEFAULT_STYLE, **options
        )


def paper_conditions(styles: Sequence[str]) -> list[Condition]:
    """Every specification x query, each image condition once per style."""
    conditions = [Condition("text-icl", "text"), Condition("instruction", "text")]
    for style in styles:
        conditions += [
            Condition("text-icl", "image", style),
            Condition("image-icl", "image", style),
            Condition("image-icl", "text", style),
            Condition("instruction", "image", style),
        ]
    return conditions


def method_summary(result: RunResult, metric: str) -> pd.DataFrame:
    """``mean``/``std`` over seeds per task (+ average) and method, on the test split."""
    return summary_table(result.predictions, metric)


def cell(summary: pd.DataFrame, method: str) -> tuple[pd.Series, pd.Series]:
    """One method's per-task mean and std (rows: tasks + average)."""
    return summary[("mean", method)], summary[("std", method)]


#: Table 3's rows: (the condition's spec, its method) of image queries
TABLE3_ROWS = {
    "No Context": ("text-icl", "no_context"),
    "Majority": ("text-icl", "majority"),
    "Label prior": ("text-icl", "label_prior"),
    "Image ICL Base": ("image-icl", "xbase"),
    "Image ICL Patch": ("image-icl", "xpatch"),
    "Text ICL xBase": ("text-icl", "xbase"),
    "Text ICL xPatch": ("text-icl", "xpatch"),
}
#: the reference row under Table 3: what answering the test split's most frequent label scores
TOP_LABEL_ROW = "Top-label share (test split)"


def table3_with_std(
    results: dict[Condition, RunResult], style: str, metric: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3's rows (``TABLE3_ROWS``; Label prior: the most frequent validation label answered
    for every test item) and, for reference, ``TOP_LABEL_ROW`` (std 0); tasks and average as
    columns."""
    summaries = {
        spec: method_summary(results[Condition(spec, "image", style)], metric)
        for spec in ("text-icl", "image-icl")
    }
    rows = {
        name: cell(summaries[spec], method)
        for name, (spec, method) in TABLE3_ROWS.items()
        if ("mean", method) in summaries[spec].columns
    }
    shares = top_label_share(results[Condition("text-icl", "image", style)].predictions)
    shares["average"] = shares.mean()
    rows[TOP_LABEL_ROW] = (shares, shares * 0.0)
    mean = pd.DataFrame({name: m for name, (m, _) in rows.items()}).T
    std = pd.DataFrame({name: s for name, (_, s) in rows.items()}).T
    return mean, std


def table3_diversity(results: dict[Condition, RunResult], style: str) -> pd.DataFrame:
    """Answer diversity of Table 3's rows on image queries in ``style``: one row per (Table 3 row,
    measure) with measures ``top_share``, ``distinct`` and ``collapsed`` (1.0 or 0.0), tasks as
    columns (``scoring.answer_diversity``)."""
    frames = {}
    for spec in ("text-icl", "image-icl"):
        frames[spec] = answer_diversity(results[Condition(spec, "image", style)].predictions)
    rows = {}
    for name, (spec, method) in TABLE3_ROWS.items():
        diversity = frames[spec]
        if method not in diversity.index.get_level_values("method"):
            continue
        per_task = diversity.xs(method, level="method")
        for measure in ("top_share", "distinct", "collapsed"):
            rows[(name, measure)] = per_task[measure].astype(float)
    table = pd.DataFrame(rows).T
    table.index = table.index.set_names(["method", "measure"])
    return table


def layer_label(result: RunResult) -> int | str:
    """The layer a condition's xPatch was read at: one number, or under per-task selection each
    task's (``"9/11/11/12/11/10"`` in task order) when they differ."""
    layers = [result.layer_for(task) for task in dict.fromkeys(result.predictions.task)]
    if result.layer_selection != "per-task" or len(set(layers)) <= 1:
        return layers[0] if layers else result.best_layer
    return "/".join(str(layer) for layer in layers)


def matrix(results: dict[Condition, RunResult], metric: str) -> pd.DataFrame:
    """The full specification x query matrix (the paper's Table 10): one row per condition with
    its prompt baseline (Base/xBase) and patch (Patch/xPatch) on every task and on average, and
    the layer chosen on validation (``layer_label``)."""
    rows = []
    for condition, result in results.items():
        summary = method_summary(result, metric)
        for method, name in (("xbase", "Base"), ("xpatch", "Patch")):
            name = f"x{name}" if condition.cross_modal else name
            mean = summary[("mean", method)]
            rows.append({"condition": condition.label, "method": name, "layer": layer_label(result), **mean})
    return pd.DataFrame(rows).set_index(["condition", "method"])


def layer_curves(results: dict[Condition, RunResult], metric: str) -> pd.DataFrame:
    """Average validation accuracy per layer for every condition (rows) — the curves the layer
    was chosen from."""
    from taskvec.evaluation.scoring import layer_curve

    return pd.DataFrame(
        {c.label: layer_curve(r.val_scores, metric).loc["average"] for c, r in results.items()}
    ).T
