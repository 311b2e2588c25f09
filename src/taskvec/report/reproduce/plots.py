"""The report's own figures, drawn from its tables: validation curves per layer with the
unpatched baselines and the paper's figure as lines, and the ensembling curves (Fig. 8)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from taskvec.experiments import paper
from taskvec.report.plots import integer_layers, new_figure, save
from taskvec.storage.markdown import fixed

#: the paper's model whose numbers the layer curves draw as a reference line
REFERENCE_MODEL = "Idefics2"


def _save_plot(figure, path) -> str:
    return save(figure, path, dpi=120).name


def plot_layer_curves(
    curves: pd.DataFrame,
    path,
    title: str,
    references: dict[str, float] | None = None,
    chosen: dict[str, int] | None = None,
) -> str:
    """Validation accuracy per patched layer, one line per condition, a dot at each layer swept
    and a ring at the layer the condition was read at (``chosen``: label -> layer, where one layer
    served all its tasks); ``references`` (label -> accuracy) are drawn as horizontal lines (the
    unpatched baselines, the paper's figure), each labelled with its value, since two may fall on
    one line."""
    figure, axis = new_figure(figsize=(8.5, 4.2))
    for label, row in curves.iterrows():
        layers = [int(layer) for layer in row.index]
        layer = (chosen or {}).get(label)
        read = f" (read at {layer})" if layer is not None else ""
        (line,) = axis.plot(layers, row.values, label=f"{label}{read}", linewidth=1.8, marker=".")
        if layer is not None and layer in layers:
            axis.plot(
                [layer], [row.values[layers.index(layer)]], marker="o", markersize=9, fillstyle="none",
                color=line.get_color(),
            )  # fmt: skip
    for (label, value), style in zip((references or {}).items(), ("--", ":", "-."), strict=False):
        axis.axhline(
            value,
            color="grey" if style != "-." else "black",
            linestyle=style,
            linewidth=1.2,
            label=f"{label}: {fixed(value)}",
        )
    integer_layers(axis)
    axis.set_xlabel("patched decoder layer")
    axis.set_ylabel("validation accuracy (avg of tasks)")
    axis.set_ylim(-0.02, 1.02)
    axis.set_title(title)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    return _save_plot(figure, path)


def plot_ensemble(summary: pd.DataFrame, path, title: str) -> str:
    figure, axis = new_figure(figsize=(6, 4))
    for kind, marker in (("exemplars", "o"), ("ensemble", "s")):
        rows = summary[summary.kind == kind]
        axis.errorbar(rows.n, rows["mean"], yerr=rows["std"].fillna(0), marker=marker, capsize=3, label=kind)
    instruction = summary[summary.kind == "instruction"]
    if len(instruction):
        axis.axhline(
            float(instruction["mean"].iloc[0]), linestyle="--", color="grey", label="instruction only"
        )
    axis.set_xticks(sorted(int(n) for n in summary.n.unique()))
    axis.set_xlabel("examples behind the exemplar vector (n)")
    axis.set_ylabel("test accuracy (case-insensitive)")
    axis.set_ylim(-0.02, 1.02)
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _save_plot(figure, path)


def layer_references(table3_mean: pd.DataFrame) -> dict[str, float]:
    """The horizontal lines of a style's layer curves: the unpatched baselines of image queries
    (test split) and the paper's Text ICL xPatch on image queries, averaged over the same tasks
    (``paper.over_tasks``; no line where the paper has no such average)."""
    refs = {}
    for row in ("Text ICL xBase", "No Context"):
        if row in table3_mean.index:
            refs[f"{row}, image queries (test)"] = float(table3_mean.loc[row, "average"])
    published = paper.over_tasks(paper.TABLE3[REFERENCE_MODEL]["Text ICL xPatch"], table3_mean.columns)
    if "average" in published:
        tasks = len(table3_mean.columns.drop("average", errors="ignore"))
        over = "" if paper.all_six(table3_mean.columns) else f", mean of the same {tasks} task(s)"
        refs[f"paper ({REFERENCE_MODEL}): Text ICL xPatch, image queries{over}"] = published["average"]
    return refs


def _read_at(root: Path, conditions) -> dict[str, int]:
    """Each condition's layer as Table 10 gives it (its patch row), where one layer served every
    task (per-task selection gives ``9/11/...``: no one layer to mark on the mean curve)."""
    matrix = pd.read_csv(root / "tables" / "matrix_paper.csv")
    patched = matrix[matrix.method.isin(["Patch", "xPatch"])].set_index("condition")["layer"]
    return {
        condition: int(patched[condition])
        for condition in conditions
        if condition in patched.index and str(patched[condition]).isdigit()
    }


def draw_plots(root: Path, styles: list[str]) -> None:
    """The report's own figures, from its tables."""
    for style in styles:
        curves = pd.read_csv(root / "tables" / f"layer_curves_{style}.csv", index_col=0)
        mean = pd.read_csv(root / "tables" / f"table3_{style}_paper.csv", index_col=0)
        plot_layer_curves(
            curves,
            root / "plots" / f"layer_curves_{style}.png",
            f"xPatch per layer ({style})",
            layer_references(mean),
            _read_at(root, curves.index),
        )
        ensemble = root / "tables" / f"ensemble_{style}.csv"
        if ensemble.is_file():
            plot_ensemble(
                pd.read_csv(ensemble),
                root / "plots" / f"ensemble_{style}.png",
                f"instruction + exemplars ({style})",
            )
