"""From a finished reproduction (``pipelines.reproduce``) to the files the report is rendered
from: each part's own report, every table as CSV + Markdown, the plots and
``report_context.json``; then the report itself."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from taskvec.evaluation.scoring import flat_selection_curves, tied_selection_curves
from taskvec.experiments.conditions import layer_curves, matrix, table3_diversity, table3_with_std
from taskvec.experiments.conflict import conflict_summary
from taskvec.experiments.ensemble import summarise_ensemble
from taskvec.pipelines.reproduce import Reproduction, ReproductionResult
from taskvec.report.analysis import write_analysis_report
from taskvec.report.reproduce.claims import REPORT_METRICS, claims_beside
from taskvec.report.reproduce.folder import CONTEXT_FILE
from taskvec.report.reproduce.plots import draw_plots
from taskvec.report.reproduce.render import render_report
from taskvec.report.tables import write_run_report
from taskvec.storage.markdown import write_table
from taskvec.storage.run_folder import write_json


def write_report(result: ReproductionResult) -> Path:
    """Each condition run's own report, then the reproduction's tables (CSV + Markdown), plots,
    ``report_context.json``, and ``report.md`` and ``report.html`` rendered from them; returns
    the report's path."""
    reproduction, ensemble, conflict = result.reproduction, result.ensemble, result.conflict
    for run in (*reproduction.conditions.values(), *reproduction.transfer.values()):
        write_run_report(run)
    if result.analysis.analysis is not None:  # assembled now (one read back has its summary)
        write_analysis_report(result.analysis)
    root = reproduction.root
    _write_matrix_tables(root, reproduction)
    if result.llm is not None:
        _write_transfer_tables(root, reproduction, result.similarity)
    _write_ensemble_and_conflict_tables(root, list(reproduction.config.styles), ensemble, conflict)
    write_table(root, "claims", claims_beside(reproduction, ensemble, conflict).set_index(["style", "claim"]))
    draw_plots(root, list(reproduction.config.styles))
    write_json(root / CONTEXT_FILE, _context(reproduction, result.analysis, result.llm, result.timings))
    return render_report(root)


def _write_matrix_tables(root: Path, reproduction: Reproduction) -> None:
    """Table 3 per style and metric (mean and std), Table 10 per metric, each style's answer
    diversity and validation layer curves."""
    conditions, styles = reproduction.conditions, reproduction.config.styles
    for metric in REPORT_METRICS:
        for style in styles:
            mean, std = table3_with_std(conditions, style, metric)
            write_table(root, f"table3_{style}_{metric}", mean.round(4))
            write_table(root, f"table3_{style}_{metric}_std", std.round(4))
        write_table(root, f"matrix_{metric}", matrix(conditions, metric).round(3))
    for style in styles:
        write_table(root, f"diversity_{style}", table3_diversity(conditions, style).round(4))
    for style in styles:
        chosen = {c: r for c, r in conditions.items() if c.style in (style, None)}
        write_table(root, f"layer_curves_{style}", layer_curves(chosen, "paper").round(4))


def _write_transfer_tables(root: Path, reproduction: Reproduction, similarity: pd.DataFrame | None) -> None:
    """Table 4 and, where computed, the similarity of the LLM's and the VLM's vectors."""
    write_table(root, "table4", _table4(reproduction))
    if similarity is not None:
        write_table(root, "table4_similarity", similarity)


def _write_ensemble_and_conflict_tables(
    root: Path, styles: list[str], ensemble: pd.DataFrame | None, conflict: pd.DataFrame | None
) -> None:
    """Fig. 8's scores per style and Fig. 9's summary, where those stages ran."""
    if ensemble is not None and len(ensemble):
        for style in styles:
            summary = summarise_ensemble(ensemble[ensemble["style"] == style]).round(3)
            write_table(root, f"ensemble_{style}", summary.set_index(["kind", "n"]))
    if conflict is not None and len(conflict):
        write_table(root, "conflict_summary", conflict_summary(conflict))


def _context(reproduction: Reproduction, analysis, llm, timings: dict) -> dict:
    """What the report states beyond its tables (``report_context.json``)."""
    adapter = reproduction.adapter
    return {
        "training_style": reproduction.training_style,
        "tasks": [{"name": t.name, "val": len(t.val), "test": len(t.test)} for t in reproduction.tasks],
        "llm": llm.name if llm is not None else None,
        "llm_is_the_frozen_language_model": llm is not None and reproduction.transfer_by_construction,
        "llm_vectors_equal_the_vlms": llm is not None and reproduction.transfer_vectors_equal,
        "timings": timings,
        #: the launches that finished the folder, whose stage times ``timings`` sums
        "launches": reproduction.folder.status().get("launches", 1),
        #: resumed after a launch stopped part-way, whose time ``timings`` does not hold
        "after_a_stopped_launch": bool(reproduction.folder.status().get("after_a_stopped_launch")),
        "condition_seconds": {
            c.label: r.folder.status().get("seconds") for c, r in reproduction.conditions.items()
        },
        #: per condition, the validation curves its layer was chosen on that were flat (the tie
        #: rule, not the data, chose there): ``average`` (shared) or each task's (per-task)
        "flat_layers": {
            c.label: flat
            for c, r in reproduction.conditions.items()
            if (flat := flat_selection_curves(r.val_scores, r.config.selection_metric, r.layer_selection))
        },
        #: ... and those whose best value several layers share (the tie rule chose among them)
        "tied_layers": {
            c.label: tied
            for c, r in reproduction.conditions.items()
            if (tied := tied_selection_curves(r.val_scores, r.config.selection_metric, r.layer_selection))
        },
        #: per run (a condition, or Table 4's LLM -> VLM run of a style), what was said of its
        #: inputs while it was computed (``RunResult.warnings``)
        "warnings": {
            label: run.warnings
            for label, run in [
                *((c.label, r) for c, r in reproduction.conditions.items()),
                *((f"LLM -> VLM ({style})", r) for style, r in reproduction.transfer.items()),
            ]
            if run.warnings
        },
        "recognition": adapter.recognition() or None,
        "analysis": None
        if analysis is None
        else {"layer": int(analysis.layer), "layer_source": analysis.layer_source},
    }


def _table4(reproduction: Reproduction) -> pd.DataFrame:
    """Table 4 by the paper's metric, each row followed by the same by the whole-label metric."""
    rows = {}
    for style, result in reproduction.transfer.items():
        vlm = reproduction.main_condition(style).predictions
        llm_rows = result.predictions
        for name, frame in (("VLM -> VLM xPatch", vlm), ("LLM -> VLM xPatch", llm_rows)):
            for metric, suffix in (("paper", ""), ("whole_label", " (whole_label)")):
                scores = frame[frame.method == "xpatch"].groupby(["task", "seed"])[metric].mean()
                per_task = scores.groupby("task").mean()
                per_task["average"] = scores.groupby("seed").mean().mean()
                rows[(style, name + suffix)] = per_task
    table = pd.DataFrame(rows).T.round(3).rename_axis(["style", "vectors"])
    return table[[t.name for t in reproduction.tasks if t.name in table.columns] + ["average"]]
