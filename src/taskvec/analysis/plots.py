"""Figures for the analyses. Each takes the data frame its analysis returns and a PNG path."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import font_manager, ft2font  # noqa: E402

from taskvec.analysis.token_sets import PHASES  # noqa: E402

PHASE_COLORS = {"input": "tab:blue", "task": "tab:orange", "answer": "tab:green"}
SPEC_LINES = {"text-icl": "-", "image-icl": "--", "instruction": ":"}
SPEC_MARKERS = {"text-icl": "o", "image-icl": "^", "instruction": "s"}


def save(figure, path: Path) -> Path:
    """Write a PNG atomically (a temporary file renamed into place) and close the figure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=130)
    plt.close(figure)
    tmp.replace(path)
    return path


@cache
def _font_codepoints() -> frozenset[int]:
    """The characters the plots' default font draws."""
    path = font_manager.findfont(font_manager.FontProperties())
    return frozenset(ft2font.FT2Font(path).get_charmap())


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
    figure, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False, sharey=True)
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
    for axis in axes.flat[len(tasks) :]:
        axis.axis("off")
    axes[0][0].set_ylabel("mass / its peak" if relative else "probability mass")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=7)
    figure.suptitle(title or "logit lens at the delimiter: input / task / answer tokens")
    figure.tight_layout(rect=(0, 0.08, 1, 0.97))
    return save(figure, path)


def plot_top1(distribution: pd.DataFrame, path: Path, title: str = "", keep: int = 8) -> Path:
    """Top-1 decoded tokens at chosen layers (paper Fig. 4): one panel per (task, layer).

    ``distribution``: rows (task, layer, token, share)."""
    tasks = list(dict.fromkeys(distribution["task"]))
    layers = sorted(distribution["layer"].unique())
    figure, axes = plt.subplots(
        len(tasks), len(layers), figsize=(3.0 * len(layers), 1.9 * len(tasks)), squeeze=False
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
    figure.tight_layout()
    return save(figure, path)


def plot_similarity(matrix: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Heatmap of a ``cosine_matrix`` (rows and columns: task / spec)."""
    labels = [f"{task} / {spec}" for task, spec in matrix.index]
    size = max(4.0, 0.38 * len(labels) + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(matrix.to_numpy(), vmin=min(0.0, float(matrix.min().min())), vmax=1, cmap="viridis")
    axis.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axis.set_yticks(range(len(labels)), labels, fontsize=7)
    figure.colorbar(image, ax=axis, fraction=0.046, label="cosine similarity")
    axis.set_title(title or "task-vector cosine similarity", fontsize=9)
    figure.tight_layout()
    return save(figure, path)


def plot_similarity_by_layer(frame: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Same-task (across specifications) vs random-pair cosine per layer."""
    figure, axis = plt.subplots(figsize=(7, 4))
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
    axis.set_ylabel("mean cosine similarity")
    axis.set_title(title or "task-vector similarity per layer", fontsize=9)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return save(figure, path)


def plot_embedding(frame: pd.DataFrame, path: Path, title: str = "") -> Path:
    """2-D map of per-prompt task vectors: colour = task, marker = specification (paper Fig. 1b)."""
    figure, axis = plt.subplots(figsize=(6.5, 5.5))
    colors = plt.get_cmap("tab10")
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
    axis.set_title(title or "per-prompt task vectors", fontsize=9)
    axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.tight_layout()
    return save(figure, path)
