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
from taskvec.evaluation.scoring import summary_table
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


def table3(results: dict[Condition, RunResult], style: str, metric: str) -> pd.DataFrame:
    """Image queries in ``style``: the paper's Table 3 rows, tasks as columns (mean over seeds).

    ``std`` columns are kept alongside in a second frame by :func:`table3_with_std`."""
    return table3_with_std(results, style, metric)[0]


def table3_with_std(
    results: dict[Condition, RunResult], style: str, metric: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    text = method_summary(results[Condition("text-icl", "image", style)], metric)
    image = method_summary(results[Condition("image-icl", "image", style)], metric)
    rows = {
        "No Context": cell(text, "no_context"),
        "Majority": cell(text, "majority"),
        "Image ICL Base": cell(image, "xbase"),
        "Image ICL Patch": cell(image, "xpatch"),
        "Text ICL xBase": cell(text, "xbase"),
        "Text ICL xPatch": cell(text, "xpatch"),
    }
    mean = pd.DataFrame({name: m for name, (m, _) in rows.items()}).T
    std = pd.DataFrame({name: s for name, (_, s) in rows.items()}).T
    return mean, std


def matrix(results: dict[Condition, RunResult], metric: str) -> pd.DataFrame:
    """The full specification x query matrix (the paper's Table 10): one row per condition with
    its prompt baseline (Base/xBase) and patch (Patch/xPatch) on every task and on average, and
    the layer chosen on validation."""
    rows = []
    for condition, result in results.items():
        summary = method_summary(result, metric)
        for method, name in (("xbase", "Base"), ("xpatch", "Patch")):
            name = f"x{name}" if condition.cross_modal else name
            mean = summary[("mean", method)]
            rows.append({"condition": condition.label, "method": name, "layer": result.best_layer, **mean})
    return pd.DataFrame(rows).set_index(["condition", "method"])


def layer_curves(results: dict[Condition, RunResult], metric: str) -> pd.DataFrame:
    """Average validation accuracy per layer for every condition (rows) — the curves the layer
    was chosen from."""
    from taskvec.evaluation.scoring import layer_curve

    return pd.DataFrame(
        {c.label: layer_curve(r.val_scores, metric).loc["average"] for c, r in results.items()}
    ).T
