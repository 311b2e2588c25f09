"""What a reader reads of an analysis (``pipelines.analyze``): the Markdown of the tables the
summary shows, the plots and ``summary.md``, written from the analysis's own tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from taskvec.analysis.lens import layer_ranges
from taskvec.pipelines.analyze import SUMMARY_FILE, AnalysisConfig, AnalysisResult, result_tables
from taskvec.report import plots
from taskvec.storage.markdown import fixed, markdown_table
from taskvec.storage.run_folder import RunFolder, write_atomic

#: the tables the summary shows: the summary's name for each -> its file name (``layer``: the
#: analysis's layer)
SHOWN = {
    "phase_ranges": "phase_ranges",
    "phase_ranges_by_task": "phase_ranges_by_task",
    "decodings": "decodings_table",
    "similarity": "similarity_layer{layer}",
    "similarity_by_layer": "similarity_by_layer",
}


def write_analysis_report(result: AnalysisResult) -> Path:
    """The shown tables as Markdown beside their CSV, the plots and ``summary.md``; returns the
    summary's path. Needs a freshly assembled analysis (``result.analysis``)."""
    results, config = result.analysis, result.config
    if results is None or config is None:
        raise ValueError("an analysis report needs the analysis's tables (AnalysisResult.analysis)")
    folder = result.folder
    files = result_tables(results)
    markdown = {}
    for shown, name in SHOWN.items():
        name = name.format(layer=results.layer)
        frame, index = files[name]
        markdown[shown] = markdown_table(frame, index=index)
        write_atomic(folder.path("tables", f"{name}.md"), markdown[shown] + "\n")
    plot_paths = _plots(folder, result.model, result.specs, results)
    summary = _summary(config, result, markdown)
    summary += ["## Files", "", *[f"- `{p.relative_to(folder.root)}`" for p in plot_paths]]
    summary += ["- `tables/` (CSV + Markdown), `vectors/` (task vectors, safetensors + JSON)", ""]
    path = folder.path(SUMMARY_FILE)
    write_atomic(path, "\n".join(summary))
    return path


def _plots(folder: RunFolder, model: str, specs: list[str], results) -> list[Path]:
    tables, layer = results.tables, results.layer
    curves, distribution = tables["phase_curves"], tables["top1_distribution"]
    return [
        plots.plot_phases(curves, folder.path("plots", "phases.png"), f"{model}: logit lens"),
        plots.plot_phases(
            curves,
            folder.path("plots", "phases_relative.png"),
            f"{model}: logit lens, each curve relative to its peak",
            relative=True,
        ),
        *[
            plots.plot_top1(
                distribution[distribution["spec"] == spec],
                folder.path("plots", f"top1_{spec}.png"),
                f"{model}, {spec}: top-1 logit-lens token (share of prompts)",
            )
            for spec in specs
        ],
        *_similarity_plots(folder, model, tables, layer),
        *[
            plots.plot_embedding(
                frame,
                folder.path("plots", f"embedding_{method}.png"),
                f"{model}, layer {layer}: {method} of each test prompt's delimiter state"
                + _variance_shown(frame),
            )
            for method, frame in results.embeddings.items()
        ],
    ]


def _variance_shown(frame) -> str:
    """A PCA map's title's end: the variance its axes carry (its plot has no scale)."""
    shares = frame.attrs.get("explained_variance")
    if not shares:
        return ""
    return f"\n(PC1 {shares[0]:.0%}, PC2 {shares[1]:.0%} of the variance)"


def _similarity_plots(folder: RunFolder, model: str, tables: dict, layer: int) -> list[Path]:
    """The cosine matrix and its curves over layers; none for one vector (one task, one
    specification: there is no pair to compare, and the plots were empty)."""
    if len(tables["similarity"]) < 2:
        return []
    return [
        plots.plot_similarity(
            tables["similarity"],
            folder.path("plots", f"similarity_layer{layer}.png"),
            f"{model}: cosine, layer {layer}",
        ),
        plots.plot_similarity_by_layer(
            tables["similarity_by_layer"],
            folder.path("plots", "similarity_by_layer.png"),
            f"{model}: task-vector similarity",
        ),
    ]


#: a same-task margin the summary calls "above its baseline": margins of a few 1e-4 (the vectors
#: of early layers, where every prompt's state is nearly the same) are no finding to name
CLEAR_MARGIN = 0.01


def _summary(config: AnalysisConfig, result: AnalysisResult, markdown: dict[str, str]) -> list[str]:
    results = result.analysis
    layer, by_layer = results.layer, results.tables["similarity_by_layer"]
    row = by_layer.loc[layer]
    above = layer_ranges(by_layer.index[by_layer["margin"] >= CLEAR_MARGIN].tolist())
    lines = [
        f"# taskvec analysis: {result.model}",
        "",
        f"- tasks: {', '.join(config.tasks)}; specifications: {', '.join(result.specs)}",
        f"- template `{config.template.name}`, {config.n_examples} examples, seed {config.seed}; "
        f"up to {config.prompts} test prompts per task and specification "
        f"({min(config.lens_prompts, config.prompts)} through the full logit lens)",
        f"- layer **{layer}** ({results.layer_source}) for decodings, similarity and embeddings; "
        f"top-1 decodings at layers {results.decode_layers}",
        "",
        "## Three phases (logit lens at the delimiter, mean over tasks)",
        "",
        "Mass on input / task / answer tokens per layer. `layers`: where the phase has the highest mass "
        "relative to its own peak (and at least half of it); see `plots/phases_relative.png`, "
        "`tables/phase_ranges_by_task.md`, `tables/token_sets.csv`.",
        "",
        markdown["phase_ranges"],
        "",
        f"## Task-vector decodings at layer {layer} (top {config.top_k})",
        "",
        markdown["decodings"],
        "",
        "## Similarity",
        "",
        similarity_sentence(layer, row, by_layer, above, len(config.tasks), len(result.specs)),
        "",
    ]
    if results.purity:
        one_task = len(config.tasks) == 1
        trivial = " (one task: every neighbour is of it, so this says nothing)" if one_task else ""
        lines += [
            "## Embeddings",
            "",
            "Share of per-prompt vectors whose nearest neighbour in the map is of the same task: "
            + ", ".join(f"{m} {fixed(p)}" for m, p in results.purity.items())
            + trivial,
            "",
        ]
    return lines


def similarity_sentence(
    layer: int, row: pd.Series, by_layer: pd.DataFrame, above: str, tasks: int, specs: int
) -> str:
    """The similarity at ``layer`` against its baseline, or why there is no baseline (one task:
    no pair of different tasks; one specification: no same-task pair across specifications)."""
    if tasks == 1 and specs == 1:
        return f"One task and one specification: no pair of vectors to compare at layer {layer}."
    if tasks == 1:
        return (
            f"At layer {layer}: same task across specifications {fixed(row['same_task'], 3)}. One task was "
            "analysed, so there is no pair of different tasks, the baseline that says whether this is "
            "high: analyse two tasks or more."
        )
    if specs == 1:
        return (
            f"At layer {layer}: random pairs of different tasks {fixed(row['random_pair'], 3)} "
            "(only one specification, so no same-task pairs)."
        )
    names = ("same_task", "different_both", "same_spec", "random_pair")
    same, other, spec, pairs = (fixed(row[name], 3) for name in names)
    return (
        f"At layer {layer}: same task across specifications {same}; baseline, other task and other "
        f"specification {other}; same specification across tasks {spec}; random pairs of different "
        f"tasks {pairs}. Same task is above its baseline by {CLEAR_MARGIN} or more at layers: "
        f"{above or 'none'}; largest margin {fixed(by_layer['margin'].max(), 3)} at layer "
        f"{int(by_layer['margin'].idxmax())} (`plots/similarity_by_layer.png`)."
    )
