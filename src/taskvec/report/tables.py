"""Tables (CSV + Markdown), plots and the short report of a run folder."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from taskvec.evaluation.metrics import FIRST_TOKEN_METRICS, METRICS  # noqa: E402
from taskvec.evaluation.protocol import ExperimentConfig  # noqa: E402
from taskvec.evaluation.scoring import layer_curve, summary_table  # noqa: E402
from taskvec.storage.markdown import write_table  # noqa: E402
from taskvec.storage.run_folder import RunFolder, write_atomic  # noqa: E402

METHOD_NAMES = {
    "no_context": "No Context",
    "majority": "Majority",
    "xbase": "xBase",
    "xpatch": "xPatch",
}


def format_summary(table: pd.DataFrame) -> pd.DataFrame:
    """``mean ± std`` strings, methods as columns in the paper's order."""
    mean, std = table["mean"], table["std"]
    cells = mean.map(lambda v: f"{v:.2f}") + " ± " + std.map(lambda v: f"{v:.2f}")
    return cells.rename(columns=METHOD_NAMES)


def plot_curves(curve: pd.DataFrame, best: int, title: str, path) -> None:
    figure, axis = plt.subplots(figsize=(7, 4))
    for task, row in curve.iterrows():
        style = dict(linewidth=2.5, color="black") if task == "average" else dict(alpha=0.7)
        axis.plot(row.index, row.values, label=task, **style)
    axis.axvline(best, linestyle="--", color="grey", label=f"chosen layer {best}")
    axis.set_xlabel("patched decoder layer")
    axis.set_ylabel("accuracy")
    axis.set_ylim(-0.02, 1.02)
    axis.set_title(title)
    axis.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=120)
    plt.close(figure)
    tmp.replace(path)


def write_run_outputs(
    folder: RunFolder,
    config: ExperimentConfig,
    val_scores: pd.DataFrame,
    predictions: pd.DataFrame,
    best: int,
    test_scores: pd.DataFrame,
) -> None:
    """Everything a reader needs: predictions, tables per metric, curves, plot, report.md."""
    write_atomic(
        folder.path("predictions.jsonl"),
        "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in predictions.to_dict("records"))
        + "\n",
    )
    sections = []
    for metric in METRICS:
        table = summary_table(predictions, metric)
        if table.empty:
            continue
        write_table(folder.root, f"summary_{metric}", table)
        sections.append(
            (metric, write_table(folder.root, f"summary_{metric}_formatted", format_summary(table)))
        )
    for metric in FIRST_TOKEN_METRICS:
        val_curve = layer_curve(val_scores, metric)
        write_table(folder.root, f"val_curve_{metric}", val_curve.round(4))
        if not test_scores.empty:  # swept at every layer (``test_layers="all"``)
            write_table(folder.root, f"test_curve_{metric}", layer_curve(test_scores, metric).round(4))
    curve = layer_curve(val_scores, config.selection_metric)
    plot_curves(
        curve,
        best,
        f"xPatch validation accuracy per layer ({config.selection_metric})",
        folder.path("plots", "val_curve.png"),
    )
    plot_curves(
        layer_curve(val_scores, "strict"),
        best,
        "xPatch validation accuracy per layer (strict)",
        folder.path("plots", "val_curve_strict.png"),
    )
    write_atomic(folder.path("report.md"), run_report(config, best, sections))


def run_report(config: ExperimentConfig, best: int, sections: list[tuple[str, str]]) -> str:
    lines = [
        f"# taskvec run: {config.model}, {config.spec} -> {config.query} queries",
        "",
        f"- template `{config.template.name}`, {config.n_examples} examples, seeds {config.seeds}",
        f"- layer chosen on the validation split by `{config.selection_metric}`: **{best}**",
        "- test split, mean ± std over seeds; xPatch at the chosen layer",
        "",
    ]
    notes = {
        "paper": "the paper's first-token prefix rule (comparable to its tables)",
        "paper_ci": "the paper's rule, case-insensitive",
        "strict": "first token must be the label's own first token",
        "exact": "the whole greedy answer line equals the label or an alias",
    }
    for metric, markdown in sections:
        lines += [f"## {metric}: {notes[metric]}", "", markdown, ""]
    lines += [
        "Files: `tables/` (CSV + Markdown per metric, per-layer curves), `plots/val_curve.png`, "
        "`predictions.jsonl`, `units/` (raw predictions per task and seed), `vectors/`.",
        "",
    ]
    return "\n".join(lines)
