"""Figures for the analyses, each from the data frame its analysis returns to a PNG path, and
what every report figure shares (``new_figure``, ``save``, ``integer_layers``).

Figures are ``matplotlib.figure.Figure`` objects, never pyplot's: importing a report module
leaves the process's backend alone (a notebook keeps its inline plots), and no figure waits in
pyplot's list to be closed."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib import font_manager, ft2font
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from taskvec.analysis.token_sets import PHASES
from taskvec.storage.run_folder import write_figure

PHASE_COLORS = {"input": "tab:blue", "task": "tab:orange", "answer": "tab:green"}
SPEC_LINES = {"text-icl": "-", "image-icl": "--", "instruction": ":"}
SPEC_MARKERS = {"text-icl": "o", "image-icl": "^", "instruction": "s"}


def new_figure(
    rows: int = 1, cols: int = 1, *, figsize: tuple[float, float], layout: str | None = None, **grid
):
    """A figure and its axes (``Figure.subplots``: one axis, or with ``squeeze=False`` a grid)."""
    figure = Figure(figsize=figsize, layout=layout)
    return figure, figure.subplots(rows, cols, **grid)


def save(figure: Figure, path: Path, dpi: int = 130, tight: bool = True) -> Path:
    """Write a PNG atomically (a temporary file renamed into place). With ``tight`` the picture
    is cut to what the figure draws (``bbox_inches="tight"``), so a legend or label placed outside
    the axes is never clipped."""
    options = dict(bbox_inches="tight", pad_inches=0.1) if tight else {}
    return write_figure(figure, path, dpi=dpi, **options)


@cache
def _font_codepoints() -> frozenset[int]:
    """The characters the plots' default font draws."""
    path = font_manager.findfont(font_manager.FontProperties())
    return frozenset(ft2font.FT2Font(path).get_charmap())


def integer_layers(axis) -> None:
    """Layer axes tick at whole layers only (never 2.5)."""
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def token_label(token: str) -> str:
    """A decoded token as a plot label: its ``repr`` (spaces and newlines visible), with every
    character the font cannot draw written as its escape (``\\u96b8``) instead of an empty box."""
    drawable = _font_codepoints()

    def shown(char: str) -> str:
        code = ord(char)
        if code in drawable:
            return char
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"

    return "".join(shown(char) for char in repr(token))


def plot_phases(curves: pd.DataFrame, path: Path, title: str = "", relative: bool = False) -> Path:
    """Logit-lens mass on input / task / answer tokens per layer (paper Fig. 3).

    ``curves``: rows (task, spec, layer, <phase>_mass...); one panel per task, one line
    style per specification. With ``relative`` each curve is divided by its own peak, so the
    task phase (few tokens, little absolute mass) shows where it lives."""
    tasks = list(dict.fromkeys(curves["task"]))
    cols = min(3, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    figure, axes = new_figure(
        rows,
        cols,
        figsize=(4.2 * cols, 3.2 * rows + 0.8),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for axis, task in zip(axes.flat, tasks, strict=False):
        for spec, group in curves[curves["task"] == task].groupby("spec", sort=False):
            for phase in PHASES:
                values = group[f"{phase}_mass"]
                if relative and values.max() > 0:
                    values = values / values.max()
                axis.plot(
                    group["layer"],
                    values,
                    SPEC_LINES.get(spec, "-"),
                    color=PHASE_COLORS[phase],
                    label=f"{phase} ({spec})",
                )
        axis.set_title(task, fontsize=9)
        axis.set_xlabel("layer")
        axis.set_ylim(-0.02, 1.02)
        integer_layers(axis)
    for axis in axes.flat[len(tasks) :]:
        axis.axis("off")
    axes[0][0].set_ylabel("mass / its peak" if relative else "probability mass")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    # below the panels, inside the figure's layout (constrained layout makes room for it)
    figure.legend(handles, labels, loc="outside lower center", ncol=min(3, len(labels)), fontsize=7)
    figure.suptitle(title or "logit lens at the delimiter: input / task / answer tokens")
    return save(figure, path)


def uniform_layers(distribution: pd.DataFrame) -> dict[int, str]:
    """Layers at which every prompt of every task decodes to one and the same token: ``layer ->
    token``. Such a layer says only that the lens reads one token there, which a column of
    identical full bars would repeat once per task."""
    uniform = {}
    for layer, part in distribution.groupby("layer"):
        tops = part.sort_values("share", ascending=False).groupby("task", sort=False).head(1)
        tokens = set(tops["token"])
        if len(tokens) == 1 and (tops["share"] >= 1.0).all():
            uniform[int(layer)] = tokens.pop()
    return uniform


def plot_top1(distribution: pd.DataFrame, path: Path, title: str = "", keep: int = 8) -> Path:
    """Top-1 decoded tokens at chosen layers (paper Fig. 4): one panel per (task, layer).

    ``distribution``: rows (task, layer, token, share). A layer where every prompt of every task
    decodes to one token gets no column of identical bars: a note under the panels names it."""
    tasks = list(dict.fromkeys(distribution["task"]))
    uniform = uniform_layers(distribution)
    layers = [layer for layer in sorted(distribution["layer"].unique()) if int(layer) not in uniform]
    layers = layers or sorted(distribution["layer"].unique())
    figure, axes = new_figure(
        len(tasks),
        len(layers),
        figsize=(3.0 * len(layers), 1.9 * len(tasks) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for r, task in enumerate(tasks):
        for c, layer in enumerate(layers):
            axis = axes[r][c]
            part = distribution[(distribution["task"] == task) & (distribution["layer"] == layer)].head(keep)
            labels = [token_label(t) for t in part["token"]]
            axis.barh(labels[::-1], list(part["share"])[::-1], color="tab:gray")
            axis.set_xlim(0, 1)
            axis.tick_params(labelsize=6)
            if r == 0:
                axis.set_title(f"layer {layer}", fontsize=9)
            if c == 0:
                axis.set_ylabel(task, fontsize=8)
    figure.suptitle(title or "top-1 logit-lens token at the delimiter (share of prompts)")
    shown = [layer for layer in uniform if layer not in layers]
    if shown:
        note = "; ".join(f"layer {layer} ({token_label(uniform[layer])})" for layer in shown)
        text = f"Not drawn: {note}, where every prompt of every task decodes to that token"
        figure.supxlabel(text, fontsize=8)
    return save(figure, path)


def similarity_range(values) -> tuple[float, float]:
    """The colour range of a cosine heatmap: the data's own range, widened to steps of 0.05, so
    that values that all lie between 0.85 and 1 still show their structure; never beyond a
    cosine's own bounds (a vector with itself rounds to 1.0000005 in float32, which widened the
    scale to 1.05 and left its top colour to no cell)."""
    low, high = float(pd.Series(values).min()), float(pd.Series(values).max())
    low, high = max(-1.0, math.floor(low * 20) / 20), min(1.0, math.ceil(high * 20) / 20)
    if high - low < 0.05:
        low, high = max(-1.0, low - 0.05), min(1.0, high + 0.05)
    return low, high


def plot_similarity(matrix: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Heatmap of a ``cosine_matrix`` (rows and columns: task / spec); the colour scale spans the
    data's range (see ``similarity_range``), not 0 to 1."""
    labels = [f"{task} / {spec}" for task, spec in matrix.index]
    size = max(4.0, 0.38 * len(labels) + 2)
    figure, axis = new_figure(figsize=(size + 1, size))
    values = matrix.to_numpy()
    low, high = similarity_range(values.ravel())
    image = axis.imshow(values, vmin=low, vmax=high, cmap="viridis")
    axis.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axis.set_yticks(range(len(labels)), labels, fontsize=7)
    figure.colorbar(image, ax=axis, fraction=0.046, label="cosine similarity (scale fitted to the data)")
    axis.set_title(title or "task-vector cosine similarity", fontsize=9)
    figure.tight_layout()
    return save(figure, path)


def plot_similarity_by_layer(frame: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Same-task (across specifications) vs random-pair cosine per layer."""
    figure, axis = new_figure(figsize=(7, 4))
    names = {
        "same_task": "same task, other specification",
        "same_spec": "same specification, other task",
        "different_both": "other task, other specification: baseline",
        "random_pair": "random pair (other task, any specification)",
    }
    baselines = {
        "different_both": dict(color="black", linestyle="--"),
        "random_pair": dict(color="grey", linestyle=":"),
    }
    for column, label in names.items():
        if frame[column].notna().any():
            style = baselines.get(column, {})
            axis.plot(frame.index, frame[column], label=label, **style)
    axis.set_xlabel("layer")
    integer_layers(axis)
    axis.set_ylabel("mean cosine similarity")
    axis.set_title(title or "task-vector similarity per layer", fontsize=9)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return save(figure, path)


def plot_embedding(frame: pd.DataFrame, path: Path, title: str = "") -> Path:
    """2-D map of per-prompt delimiter states (each test prompt's; their mean is a text-ICL task
    vector, while an instruction's vector is read from the instruction alone): colour = task,
    marker = specification (paper Fig. 1b)."""
    figure, axis = new_figure(figsize=(6.5, 5.5))
    colors = matplotlib.colormaps["tab10"]
    tasks = list(dict.fromkeys(frame["task"]))
    for t, task in enumerate(tasks):
        for spec, group in frame[frame["task"] == task].groupby("spec", sort=False):
            axis.scatter(
                group["x"],
                group["y"],
                s=14,
                color=colors(t % 10),
                marker=SPEC_MARKERS.get(spec, "o"),
                alpha=0.75,
                label=f"{task} / {spec}",
            )
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title or "each test prompt's delimiter state", fontsize=9)
    axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.tight_layout()
    return save(figure, path)


def redraw(folder: Path, model: str) -> list[Path]:
    """The figures of a finished analysis folder drawn again from its tables (``tables/*.csv``),
    with no model: what the analysis would draw today from the same numbers. The embedding maps,
    whose titles need the analysis layer, are left as they are."""
    folder = Path(folder)
    tables, out = folder / "tables", folder / "plots"
    curves = pd.read_csv(tables / "phase_curves.csv")
    distribution = pd.read_csv(tables / "top1_distribution.csv", keep_default_na=False, na_values=[])
    distribution["share"] = distribution["share"].astype(float)
    paths = [
        plot_phases(curves, out / "phases.png", f"{model}: logit lens"),
        plot_phases(
            curves,
            out / "phases_relative.png",
            f"{model}: logit lens, each curve relative to its peak",
            relative=True,
        ),
    ]
    for spec in dict.fromkeys(distribution["spec"]):
        paths.append(
            plot_top1(
                distribution[distribution["spec"] == spec],
                out / f"top1_{spec}.png",
                f"{model}, {spec}: top-1 logit-lens token (share of prompts)",
            )
        )
    for table in sorted(tables.glob("similarity_layer*.csv")):
        layer = table.stem.removeprefix("similarity_layer")
        matrix = pd.read_csv(table, header=[0, 1], index_col=[0, 1])
        paths.append(plot_similarity(matrix, out / f"{table.stem}.png", f"{model}: cosine, layer {layer}"))
    by_layer = pd.read_csv(tables / "similarity_by_layer.csv", index_col=0)
    title = f"{model}: task-vector similarity"
    paths.append(plot_similarity_by_layer(by_layer, out / "similarity_by_layer.png", title))
    return paths
