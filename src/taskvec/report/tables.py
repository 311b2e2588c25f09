"""Tables (CSV + Markdown), plots and the short report of a run folder."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path

import pandas as pd

from taskvec.evaluation.metrics import FIRST_TOKEN_METRICS, METRIC_NOTES, METRICS
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.evaluation.result import RunResult
from taskvec.evaluation.scoring import (
    COLLAPSE_RATIO,
    COLLAPSE_SHARE,
    answer_diversity,
    choose_layers,
    flat_selection_curves,
    layer_curve,
    summary_table,
    tied_selection_curves,
)
from taskvec.evaluation.uncertainty import paired_difference
from taskvec.report.plots import integer_layers, new_figure, save
from taskvec.storage.markdown import fixed, write_table
from taskvec.storage.run_folder import write_atomic
from taskvec.tasks.task import AVERAGE

METHOD_NAMES = {
    "no_context": "No Context",
    "majority": "Majority",
    "label_prior": "Label prior",
    "xbase": "xBase",
    "xpatch": "xPatch",
}
#: what marks a collapsed method's cell in a table
COLLAPSED_MARK = "†"
COLLAPSE_RULE = (
    f"{COLLAPSED_MARK} collapsed: the method's top answer (first token) is at least "
    f"{COLLAPSE_SHARE:g} of the items and at least {COLLAPSE_RATIO:g}x the share of the test split's "
    "most frequent label (the label prior, one label by construction, is not marked)"
)
#: what marks the cell of a method the collapse rule cannot judge (``scoring.not_judged``)
NOT_JUDGED_MARK = "‡"
NOT_JUDGED_RULE = (
    f"{NOT_JUDGED_MARK} not judged for collapse: the method's top answer is at least "
    f"{COLLAPSE_SHARE:g} of the items on a split whose most frequent label is over half of it, so the "
    "rule cannot tell a method that knows the items from one that answers that label for all of "
    "them: compare its cell with the Label prior's"
)
#: the metrics every summary shows side by side: the paper's and the one that needs the whole label
HEADLINE_METRICS = ("paper", "whole_label")


def collapsed_cells(predictions: pd.DataFrame) -> set[tuple[str, str]]:
    """The (task, method) pairs whose answers collapsed (``scoring.answer_diversity``; never the
    label prior, which answers one label by construction)."""
    diversity = answer_diversity(predictions)
    return set(diversity.index[diversity["collapsed"].fillna(False).astype(bool)])


def unjudged_cells(predictions: pd.DataFrame) -> dict[tuple[str, str], float]:
    """The (task, method) pairs the collapse rule cannot judge (``scoring.not_judged``: answers
    concentrated on a split whose most frequent label is over half of it), each with its top
    answer's share."""
    diversity = answer_diversity(predictions)
    unjudged = diversity[diversity["collapsed"].isna()]
    return {key: float(share) for key, share in unjudged["top_share"].items()}


def spread_phrase(seeds: int) -> str:
    """What a table's ``mean ± std`` cells are, said for the reader; one seed has no spread."""
    if seeds == 1:
        return "one seed, so no std"
    return "mean ± std over seeds (a seed redraws the demonstrations, not the test items)"


#: xPatch against each other method of a run, item by item
COMPARED = ("xbase", "no_context", "majority", "label_prior")
DIFFERENCES_NOTE = (
    "xPatch minus each other method on the same test items, mean over tasks, with a 95% interval "
    "over the items (each item's score averaged over the seeds, items paired, tasks weighing alike): "
    "an interval that holds 0 cannot tell the two apart"
)


def differences(predictions: pd.DataFrame, metrics=HEADLINE_METRICS) -> pd.DataFrame:
    """xPatch minus each method of ``COMPARED`` the run scored, per metric: ``difference``, its
    95% interval ``low`` to ``high`` (``evaluation.uncertainty``) and the ``items`` paired."""
    xpatch = predictions[predictions.method == "xpatch"]
    rows = []
    for method in COMPARED:
        other = predictions[predictions.method == method]
        for metric in metrics:
            if other.empty or xpatch.empty or metric not in predictions.columns:
                continue
            found = paired_difference(xpatch, other, metric)
            rows.append(
                {
                    "comparison": f"xPatch - {METHOD_NAMES[method]}",
                    "metric": metric,
                    "difference": round(found.mean, 6),
                    "low": round(found.low, 6),
                    "high": round(found.high, 6),
                    "items": found.items,
                }
            )
    return pd.DataFrame(rows)


def difference_cell(row) -> str:
    """A row's ``difference`` and its interval ``low`` to ``high``: ``+0.12 (+0.05 to +0.19)``."""
    mean, low, high = (fixed(value, sign=True) for value in (row.difference, row.low, row.high))
    return f"{mean} ({low} to {high})"


def differences_cells(found: pd.DataFrame) -> pd.DataFrame:
    """``differences`` as one cell per comparison and metric: ``+0.12 (+0.05 to +0.19)``."""
    if found.empty:
        return found
    table = found.assign(cell=[difference_cell(row) for row in found.itertuples()])
    table = table.pivot(index="comparison", columns="metric", values="cell")
    order = list(dict.fromkeys(found.comparison))
    return table.loc[order, list(dict.fromkeys(found.metric))].rename_axis(columns=None)


def mean_std_cells(mean: pd.DataFrame, std: pd.DataFrame) -> pd.DataFrame:
    """``mean ± std`` strings to two decimals; the mean alone where the std is missing (one seed
    has no spread to show)."""
    spread = std.map(lambda v: "" if pd.isna(v) else f" ± {fixed(v)}")
    return mean.map(fixed) + spread


def format_summary(
    table: pd.DataFrame,
    collapsed: AbstractSet[tuple[str, str]] = frozenset(),
    unjudged: Collection[tuple[str, str]] = frozenset(),
) -> pd.DataFrame:
    """``mean ± std`` strings (``mean_std_cells``), methods as columns in the paper's order; a
    collapsed (task, method) gets ``COLLAPSED_MARK``, one the rule cannot judge
    ``NOT_JUDGED_MARK``."""
    cells = mean_std_cells(table["mean"], table["std"])
    for marked, mark in ((collapsed, COLLAPSED_MARK), (unjudged, NOT_JUDGED_MARK)):
        for task, method in marked:
            if task in cells.index and method in cells.columns:
                cells.loc[task, method] += f" {mark}"
    return cells.rename(columns=METHOD_NAMES)


def summary_beside(predictions: pd.DataFrame, metrics=HEADLINE_METRICS) -> pd.DataFrame:
    """The formatted summaries of ``metrics`` side by side: columns (method, metric), methods in
    the paper's order, each metric's cell beside the other's; collapsed and unjudged cells marked."""
    collapsed, unjudged = collapsed_cells(predictions), unjudged_cells(predictions)
    formatted = {}
    for metric in metrics:
        table = summary_table(predictions, metric) if metric in predictions.columns else pd.DataFrame()
        if not table.empty:
            formatted[metric] = format_summary(table, collapsed, unjudged)
    if not formatted:
        return pd.DataFrame()
    first = next(iter(formatted.values()))
    columns = [
        (method, metric) for method in first.columns for metric in formatted if method in formatted[metric]
    ]
    return pd.DataFrame(
        {(method, metric): formatted[metric][method] for method, metric in columns}, index=first.index
    )


def diversity_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """``scoring.answer_diversity`` rounded, methods by their table names."""
    diversity = answer_diversity(predictions).reset_index()
    diversity["method"] = diversity["method"].map(lambda m: METHOD_NAMES.get(m, m))
    return diversity.set_index(["task", "method"]).round({"distinct": 3, "top_share": 3, "label_share": 3})


def layer_text(
    layers: Mapping[str, int],
    selection: str,
    best: int,
    flat: Mapping[str, float] | None = None,
    tied: Mapping[str, list[int]] | None = None,
) -> str:
    """How the run chose its layer(s), in one line of Markdown; ``flat``: the selection curves
    that were flat (``scoring.flat_selection_curves``), ``tied``: those whose best value several
    layers share (``scoring.tied_selection_curves``): in both the tie rule picked the layer."""
    flat, tied = flat or {}, tied or {}
    if selection == "shared":
        text = (
            f"layer selection `shared` (the paper's protocol): **{best}** for every task, the best of "
            "their mean validation curve (a task's layer depends on the tasks run beside it)"
        )
        if flat:
            text += (
                f"; **that curve is flat** ({fixed(flat[AVERAGE])} at every layer swept), so the tie rule "
                "(the lowest layer), not the data, chose it"
            )
        elif tied:
            text += (
                f"; **layers {_layer_list(tied[AVERAGE])} share its best value**, so the tie rule "
                "(the lowest layer), not the data, chose among them"
            )
        return text
    per_task = ", ".join(f"{task} {layer}" for task, layer in layers.items())
    text = (
        f"layer selection `per-task`: each task's best layer on its own validation curve: {per_task} "
        f"(the tasks' mean curve would choose {best})"
    )
    if flat:
        named = ", ".join(f"{task} ({fixed(value)})" for task, value in flat.items())
        text += f"; **flat curves**, where the tie rule (the lowest layer), not the data, chose: {named}"
    if tied:
        named = ", ".join(f"{task} (layers {_layer_list(tied_layers)})" for task, tied_layers in tied.items())
        text += f"; **tied best layers**, where the tie rule (the lowest) chose among them: {named}"
    return text


def _layer_list(layers: list[int]) -> str:
    return ", ".join(map(str, layers))


def plot_curves(
    curve: pd.DataFrame, best: int, title: str, path, task_layers: Mapping[str, int] | None = None
) -> None:
    """The validation curves per task and their mean, with the layer(s) the run read: ``best`` for
    every task, or with ``task_layers`` (per-task selection) each task's own, marked on its line,
    and ``best`` named for what it then is, the mean curve's best."""
    figure, axis = new_figure(figsize=(8.5, 4))
    one_task = len([task for task in curve.index if task != "average"]) == 1
    for task, row in curve.iterrows():
        if task == "average" and one_task:
            continue  # the mean of one task is that task's line, and would hide it
        style = dict(linewidth=2.5, color="black") if task == "average" else dict(alpha=0.7)
        style["marker"] = "."  # the layers swept (a --layers or --quick run sweeps some of them)
        label = f"{task} (layer {task_layers[task]})" if task_layers and task in task_layers else task
        (line,) = axis.plot(row.index, row.values, label=label, **style)
        layer = (task_layers or {}).get(task)
        if layer is not None and layer in row.index:
            axis.plot([layer], [row[layer]], marker="o", markersize=7, color=line.get_color())
    if task_layers:
        label = f"mean curve's best {best} (tasks read at their own, marked)"
    else:
        label = f"chosen layer {best}"
    axis.axvline(best, linestyle="--", color="grey", label=label)
    axis.set_xlabel("patched decoder layer")
    integer_layers(axis)
    axis.set_ylabel("accuracy")
    axis.set_ylim(-0.02, 1.02)
    axis.set_title(title)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the lines
    figure.tight_layout()
    save(figure, path, dpi=120, tight=False)


def selection_text(result: RunResult) -> str:
    """How ``result``'s run chose its layer(s), flat curves said: the line report.md and the
    terminal show."""
    if result.config is None:
        raise ValueError("how a run chose its layer needs the result's config (RunResult.config)")
    curves = (result.val_scores, result.config.selection_metric, result.layer_selection)
    flat, tied = flat_selection_curves(*curves), tied_selection_curves(*curves)
    layers = {task: result.layer_for(task) for task in dict.fromkeys(result.predictions.task)}
    return layer_text(layers, result.layer_selection, result.best_layer, flat, tied)


def write_run_report(result: RunResult) -> Path:
    """What a reader reads of a finished run, written from its results: tables per metric (and
    ``paper`` beside ``whole_label``), answer diversity, the layer curves, their plots and
    ``report.md``; returns the report's path. Written again, it gives the same files."""
    folder, config = result.folder, result.config
    if config is None:
        raise ValueError("a run's report needs the result's config (RunResult.config)")
    with folder.staged_report() as staging:  # swapped in whole: never half a report
        _write_run_report(result, config, staging)
    return folder.path("report.md")


def _write_run_report(result: RunResult, config: ExperimentConfig, root: Path) -> None:
    """``write_run_report``'s files, written under ``root``."""
    predictions = result.predictions
    val_scores, test_scores, best = result.val_scores, result.test_scores, result.best_layer
    collapsed, unjudged = collapsed_cells(predictions), unjudged_cells(predictions)
    headline = write_table(root, "summary_paper_whole_label", summary_beside(predictions))
    diversity = write_table(root, "answer_diversity", diversity_table(predictions))
    found = differences(predictions)
    paired = ""
    if len(found):
        write_table(root, "differences", found, index=False)
        paired = write_table(root, "differences_formatted", differences_cells(found))
    per_task_best = choose_layers(val_scores, config.selection_metric, "per-task")
    sections = []
    for metric in METRICS:
        table = summary_table(predictions, metric)
        if table.empty:
            continue
        write_table(root, f"summary_{metric}", table)
        formatted = format_summary(table, collapsed, unjudged)
        sections.append((metric, write_table(root, f"summary_{metric}_formatted", formatted)))
    for metric in FIRST_TOKEN_METRICS:
        val_curve = layer_curve(val_scores, metric)
        write_table(root, f"val_curve_{metric}", val_curve.round(4))
        if not test_scores.empty:  # swept at every layer (``test_layers="all"``)
            write_table(root, f"test_curve_{metric}", layer_curve(test_scores, metric).round(4))
    curve = layer_curve(val_scores, config.selection_metric)
    task_layers = None
    if result.layer_selection == "per-task":
        task_layers = {task: result.layer_for(task) for task in dict.fromkeys(predictions.task)}
    plot_curves(
        curve,
        best,
        f"xPatch validation accuracy per layer ({config.selection_metric})",
        root / "plots" / "val_curve.png",
        task_layers,
    )
    plot_curves(
        layer_curve(val_scores, "strict"),
        best,
        "xPatch validation accuracy per layer (strict)",
        root / "plots" / "val_curve_strict.png",
        task_layers,
    )
    report = run_report(
        config,
        selection_text(result),
        sections,
        headline=headline,
        diversity=diversity,
        differences=paired,
        collapsed=collapsed,
        per_task_best=per_task_best,
        pictures=styles_shown(predictions),
        unjudged=unjudged,
        flat_tasks=flat_selection_curves(val_scores, config.selection_metric, "per-task"),
        tied_tasks=tied_selection_curves(val_scores, config.selection_metric, "per-task"),
        warnings=result.warnings,
    )
    write_atomic(root / "report.md", report)


def styles_shown(predictions: pd.DataFrame) -> str:
    """The styles of the pictures a run showed, as its rows record them (``noto``, ``own files``);
    empty for a run that showed none."""
    if "style" not in predictions:
        return ""
    return ", ".join(f"`{style}`" for style in sorted(set(predictions["style"].dropna())))


def _methods_line(config: ExperimentConfig) -> str:
    """What xBase and xPatch are under the run's specification (an ensemble's xBase, for one, holds
    no instruction)."""
    shown = f"{config.n_examples} {config.demo_modality} demonstrations"
    vector = f"the mean of the vectors of the validation prompts ({shown} and a query each)"
    methods = {
        "instruction": ("the instruction and the query in one prompt", "the instruction's vector"),
        "ensemble": (
            f"{shown} and the query in one prompt (no instruction)",
            f"the mean of the instruction's vector and {vector}",
        ),
    }
    base, patched = methods.get(config.spec, (f"{shown} and the query in one prompt", vector))
    return f"xBase: {base}; xPatch: {patched}, patched into the bare query; No Context: the bare query"


def run_report(
    config: ExperimentConfig,
    selection: str,
    sections: list[tuple[str, str]],
    headline: str = "",
    diversity: str = "",
    collapsed: AbstractSet[tuple[str, str]] = frozenset(),
    per_task_best: Mapping[str, int] | None = None,
    pictures: str = "",
    unjudged: Mapping[tuple[str, str], float] | None = None,
    flat_tasks: Mapping[str, float] | None = None,
    differences: str = "",
    tied_tasks: Mapping[str, list[int]] | None = None,
    warnings: Sequence[str] = (),
) -> str:
    """report.md of a run; ``selection``: how it chose its layer(s) (``selection_text``);
    ``pictures``: the styles of the pictures it showed (two runs apart only in their style had
    reports alike but for their numbers)."""
    lines = [
        f"# taskvec run: {config.model}, {config.spec} -> {config.query} queries",
        "",
        f"- template `{config.template.name}`, {config.n_examples} examples, seeds {config.seeds}"
        + (f"; pictures: {pictures}" if pictures else ""),
        f"- {selection}; chosen on the validation split by `{config.selection_metric}`",
    ]
    if config.layer_selection == "shared" and per_task_best and len(per_task_best) > 1:
        flat_tasks, tied_tasks = flat_tasks or {}, tied_tasks or {}
        per_task = ", ".join(
            f"{task} {layer}"
            + (f" (flat curve, {fixed(flat_tasks[task])}: the tie rule's)" if task in flat_tasks else "")
            + (
                f" (tied with {_layer_list([t for t in tied_tasks[task] if t != layer])}: the tie rule's)"
                if task in tied_tasks
                else ""
            )
            for task, layer in per_task_best.items()
        )
        lines.append(f"- each task's own best validation layer (`--layer-selection per-task`): {per_task}")
    chosen = "each task's chosen layer" if config.layer_selection == "per-task" else "the chosen layer"
    lines += [
        f"- {_methods_line(config)}",
        f"- test split, {spread_phrase(len(config.seeds))}; `average`: the mean over tasks, each "
        f"weighing alike; xPatch at {chosen}; Label prior: the most frequent validation label answered "
        "for every test item",
        "",
    ]
    if warnings:
        lines += [
            "## Warnings",
            "",
            "What taskvec said of this run's inputs while computing it (results.json `warnings`); each bears "
            "on what the numbers below mean:",
            "",
            *(f"- {text}" for text in warnings),
            "",
        ]
    if headline:
        lines += [
            "## paper beside whole_label",
            "",
            f"`paper`: {METRIC_NOTES['paper']}; `whole_label`: {METRIC_NOTES['whole_label']} "
            "(docs/metrics.md says what each metric credits).",
            "",
            headline,
            "",
        ]
    if differences:
        lines += ["## xPatch against the other methods, item by item", "", f"{DIFFERENCES_NOTE}.", ""]
        lines += [differences, ""]
    if collapsed:
        named = ", ".join(f"{METHOD_NAMES.get(m, m)} on {t}" for t, m in sorted(collapsed))
        lines += [f"**Answer collapse**: {named}. {COLLAPSE_RULE}.", ""]
    elif not unjudged:
        rule = COLLAPSE_RULE.removeprefix(f"{COLLAPSED_MARK} collapsed: ")
        lines += [f"No method's answers collapsed (collapse: {rule}).", ""]
    if unjudged:
        named = ", ".join(
            f"{METHOD_NAMES.get(m, m)} on {t} (top answer {fixed(share)} of the items)"
            for (t, m), share in sorted(unjudged.items())
        )
        lines += [
            f"**Not judged for collapse** ({NOT_JUDGED_MARK}): {named}. The split's most frequent label is "
            "over half of it, so no answer can reach twice its share and the collapse rule cannot tell a "
            "method that answers one label for every item from one that knows the items: compare it with "
            "the Label prior (`collapsed` is empty for it in answer_diversity.csv, null in results.json).",
            "",
        ]
    for metric, markdown in sections:
        lines += [f"## {metric}: {METRIC_NOTES[metric]}", "", markdown, ""]
    lines += [
        "## Validation curves",
        "",
        "The curves the layer was chosen on (validation split, the selection metric), per task and "
        "their mean, the layer(s) read marked:",
        "",
        "![validation curves](plots/val_curve.png)",
        "",
    ]
    if diversity:
        lines += [
            "## Answer diversity",
            "",
            "Per method, on the test split: `distinct` answers (first tokens) per item and the `top_share` "
            "of the most frequent answer, each averaged over seeds; `label_share`: the test split's "
            f"most frequent label's share. {COLLAPSE_RULE}.",
            "",
            diversity,
            "",
        ]
    lines += [
        "Files: `tables/` (CSV + Markdown per metric, per-layer curves, answer_diversity), "
        "`plots/val_curve.png`, `predictions.jsonl`, `units/` (raw predictions per task and seed), "
        "`vectors/`, `results.json` (every number, the layer selection and the layers).",
        "",
    ]
    return "\n".join(lines)
