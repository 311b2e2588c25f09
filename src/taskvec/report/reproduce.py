"""The reproduction report: our tables beside the paper's, plots, and a verdict per claim.

Two steps. ``write_report`` turns a finished reproduction (``pipelines.reproduce``) into files:
each condition run's and the analysis's own report, every table as CSV + Markdown under
``tables/``, the plots, and ``report_context.json`` (what the report states beyond its tables:
the tasks' sizes, the base LLM, timings, the analysis layer). ``render_report`` then writes
``report.md`` and ``report.html`` (a Jinja2 template with its stylesheet, under ``templates/``)
from those files alone, with no model, so a copied reproduction re-renders with the current
code::

    python -m taskvec.report.reproduce --render docs/reproduce-embedded-vlm [--plots]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from taskvec.evaluation.metrics import METRIC_NOTES  # noqa: E402
from taskvec.evaluation.scoring import answer_diversity  # noqa: E402
from taskvec.experiments import paper  # noqa: E402
from taskvec.experiments.conditions import (  # noqa: E402
    TOP_LABEL_ROW,
    Condition,
    layer_curves,
    matrix,
    table3_diversity,
    table3_with_std,
)
from taskvec.experiments.conflict import conflict_summary  # noqa: E402
from taskvec.experiments.ensemble import summarise_ensemble  # noqa: E402
from taskvec.models.embedded.adapter import EmbeddedVLMAdapter  # noqa: E402
from taskvec.pipelines.reproduce import Reproduction, ReproductionResult  # noqa: E402
from taskvec.report.analysis import write_analysis_report  # noqa: E402
from taskvec.report.tables import mean_std_cells, spread_phrase, write_run_report  # noqa: E402
from taskvec.storage.markdown import markdown_table, write_table  # noqa: E402
from taskvec.storage.run_folder import write_atomic, write_json  # noqa: E402

#: the metrics of the report's tables: the paper's, then the whole-label one beside it, then strict
REPORT_METRICS = ("paper", "whole_label", "strict")
COLLAPSED_MARK = "†"
#: a claim whose measure is no accuracy of Table 3 (its own score, or the answers' diversity)
METRIC_FREE = "metric-free"
CONTEXT_FILE = "report_context.json"
#: the claims table's note where a claim holds by construction rather than by experiment
BY_CONSTRUCTION = (
    "by construction: the VLM's language model is this LLM itself, frozen, so on text prompts "
    "both compute the same task vectors; equal numbers here are no evidence of transfer"
)
#: the paper's model whose numbers the layer curves draw as a reference line
REFERENCE_MODEL = "Idefics2"


# --- the numbers ----------------------------------------------------------------------------------
def _verdict(ok: bool | None) -> str:
    return {True: "yes", False: "no", None: "n/a"}[ok]


def claims(
    reproduction: Reproduction, ensemble: pd.DataFrame | None, conflict: pd.DataFrame | None, metric: str
) -> pd.DataFrame:
    """The paper's claims, each with its published figure and ours, per image style. ``note``
    says where a verdict holds by construction (the LLM -> VLM claim on a VLM whose language
    model is that LLM, frozen) rather than by experiment."""
    base = reproduction.adapter.base_language_model()
    frozen = base is not None and base.frozen
    rows = []
    for style in reproduction.config.styles:
        mean, _ = table3_with_std(reproduction.conditions, style, metric)
        avg = mean["average"]
        text_to_image = float(avg["Text ICL xPatch"])
        diversity = answer_diversity(reproduction.main_condition(style).predictions)
        xpatch = diversity.xs("xpatch", level="method")
        collapsed = xpatch[xpatch.collapsed]
        checks = [
            (
                "Text ICL xPatch beats Text ICL xBase on image queries",
                "0.51 vs 0.18 (Idefics2)",
                f"{text_to_image:.2f} vs {avg['Text ICL xBase']:.2f}",
                text_to_image > avg["Text ICL xBase"],
                "",
            ),
            (
                "Text ICL xPatch is far above No Context",
                "0.51 vs 0.01",
                f"{text_to_image:.2f} vs {avg['No Context']:.2f}",
                text_to_image > avg["No Context"] + 0.1,
                "",
            ),
            (
                "Text-ICL vectors patch image queries at least as well as image-ICL vectors",
                "0.51 vs 0.31",
                f"{text_to_image:.2f} vs {avg['Image ICL Patch']:.2f}",
                text_to_image >= avg["Image ICL Patch"],
                "",
            ),
            (
                "Text ICL xPatch beats the label prior (the most frequent val label for every item)",
                "not reported",
                f"{text_to_image:.2f} vs {avg['Label prior']:.2f}",
                text_to_image > avg["Label prior"],
                "",
            ),
            (
                "Text ICL xPatch's answers on image queries do not collapse onto one answer",
                "not reported",
                f"collapsed on {len(collapsed)} of {len(xpatch)} tasks: "
                + ", ".join(f"{t} ({r.top_answer!r} {r.top_share:.2f})" for t, r in collapsed.iterrows())
                if len(collapsed)
                else f"no task (top answer's share at most {xpatch.top_share.max():.2f})",
                not len(collapsed),
                METRIC_FREE,
            ),
        ]
        image_to_text = reproduction.conditions.get(Condition("image-icl", "text", style))
        if image_to_text is not None:
            summary = image_to_text.predictions
            got = summary[summary.method == "xpatch"].groupby(["task", "seed"])[metric].mean().mean()
            base = summary[summary.method == "no_context"].groupby(["task", "seed"])[metric].mean().mean()
            checks.append(
                (
                    "Image-ICL vectors transfer to text queries (Image ICL -> text xPatch > No Context)",
                    "0.42 (Idefics2)",
                    f"{got:.2f} vs {base:.2f}",
                    got > base + 0.1,
                    "",
                )
            )
        if style in reproduction.transfer:
            llm = reproduction.transfer[style].predictions
            llm_acc = llm[llm.method == "xpatch"].groupby(["task", "seed"])[metric].mean().mean()
            checks.append(
                (
                    "LLM -> VLM xPatch about as good as VLM -> VLM",
                    "0.52 vs 0.51 (Idefics2)",
                    f"{llm_acc:.2f} vs {text_to_image:.2f}",
                    llm_acc >= text_to_image - 0.05,
                    BY_CONSTRUCTION if frozen else "",
                )
            )
        if ensemble is not None and len(ensemble):
            summary = summarise_ensemble(ensemble[ensemble["style"] == style])
            five = summary[summary.n == min(reproduction.config.ensemble_counts)]
            exemplar = float(five[five.kind == "exemplars"]["mean"].iloc[0])
            mixed = float(five[five.kind == "ensemble"]["mean"].iloc[0])
            checks.append(
                (
                    "Instruction + exemplar ensemble beats exemplars alone at the smallest n",
                    "ensemble above exemplars (Fig. 8)",
                    f"{mixed:.2f} vs {exemplar:.2f}",
                    mixed > exemplar,
                    METRIC_FREE,
                )
            )
        if conflict is not None and len(conflict) and style == reproduction.training_style:
            wins = float(conflict.fits_patched.mean())
            followed = float(conflict.control_fits_prompted.mean())
            checks.append(
                (
                    "A patched task overrides a conflicting instruction",
                    "patched task answered (Fig. 9)",
                    f"patched task {wins:.2f} (control follows prompt {followed:.2f})",
                    wins > 0.5,
                    METRIC_FREE,
                )
            )
        for claim, published, ours, ok, note in checks:
            free = note == METRIC_FREE
            held = _verdict(ok) + (", by construction" if note and not free else "")
            rows.append(
                {
                    "style": style,
                    "claim": claim,
                    "paper": published,
                    "ours": ours,
                    "held": held,
                    "note": "" if free else note,
                    "metric_free": free,
                }
            )
    return pd.DataFrame(rows)


def claims_beside(reproduction: Reproduction, ensemble, conflict) -> pd.DataFrame:
    """``claims`` by the paper's metric with, beside ``ours`` and ``held``, the same checks by the
    whole-label metric (``-`` where a claim's measure is not a Table 3 accuracy: the ensembling
    figure's own case-insensitive score, the conflict's answers, the diversity)."""
    paper_rows = claims(reproduction, ensemble, conflict, "paper")
    whole = claims(reproduction, ensemble, conflict, "whole_label")
    free = paper_rows.pop("metric_free").to_numpy(dtype=bool)
    table = paper_rows.assign(
        **{
            "ours (whole_label)": whole["ours"].where(~free, "-").to_numpy(),
            "held (whole_label)": whole["held"].where(~free, "-").to_numpy(),
        }
    )
    columns = ["style", "claim", "paper", "ours", "held", "ours (whole_label)", "held (whole_label)", "note"]
    return table[columns]


# --- plots ------------------------------------------------------------------------------------------
def _save_plot(figure, path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=120, bbox_inches="tight", pad_inches=0.1)
    plt.close(figure)
    tmp.replace(path)
    return path.name


def plot_layer_curves(
    curves: pd.DataFrame, path, title: str, references: dict[str, float] | None = None
) -> str:
    """Validation accuracy per patched layer, one line per condition; ``references`` (label ->
    accuracy) are drawn as horizontal lines (the unpatched baselines, the paper's figure)."""
    figure, axis = plt.subplots(figsize=(8.5, 4.2))
    for label, row in curves.iterrows():
        axis.plot([int(layer) for layer in row.index], row.values, label=label, linewidth=1.8)
    for (label, value), style in zip((references or {}).items(), ("--", ":", "-."), strict=False):
        axis.axhline(
            value, color="grey" if style != "-." else "black", linestyle=style, linewidth=1.2, label=label
        )
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("patched decoder layer")
    axis.set_ylabel("validation accuracy (avg of tasks)")
    axis.set_ylim(-0.02, 1.02)
    axis.set_title(title)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    figure.tight_layout()
    return _save_plot(figure, path)


def plot_ensemble(summary: pd.DataFrame, path, title: str) -> str:
    figure, axis = plt.subplots(figsize=(6, 4))
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
    (test split) and the paper's Text ICL xPatch on image queries."""
    refs = {}
    for row in ("Text ICL xBase", "No Context"):
        if row in table3_mean.index:
            refs[f"{row}, image queries (test)"] = float(table3_mean.loc[row, "average"])
    published = paper.TABLE3[REFERENCE_MODEL]["Text ICL xPatch"]
    refs[f"paper ({REFERENCE_MODEL}): Text ICL xPatch, image queries"] = published[-1]
    return refs


def _draw_plots(root: Path, styles: list[str]) -> None:
    """The report's own figures, from its tables."""
    for style in styles:
        curves = pd.read_csv(root / "tables" / f"layer_curves_{style}.csv", index_col=0)
        mean = pd.read_csv(root / "tables" / f"table3_{style}_paper.csv", index_col=0)
        plot_layer_curves(
            curves,
            root / "plots" / f"layer_curves_{style}.png",
            f"xPatch per layer ({style})",
            layer_references(mean),
        )
        ensemble = root / "tables" / f"ensemble_{style}.csv"
        if ensemble.is_file():
            plot_ensemble(
                pd.read_csv(ensemble),
                root / "plots" / f"ensemble_{style}.png",
                f"instruction + exemplars ({style})",
            )


# --- from a reproduction to files -----------------------------------------------------------------
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
    _draw_plots(root, list(reproduction.config.styles))
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
        "llm_is_the_frozen_language_model": llm is not None and _frozen_base(adapter),
        "timings": timings,
        "condition_seconds": {
            c.label: r.folder.status().get("seconds") for c, r in reproduction.conditions.items()
        },
        "recognition": (adapter.recognition if isinstance(adapter, EmbeddedVLMAdapter) else None) or None,
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


# --- the document ---------------------------------------------------------------------------------
@dataclass
class Table:
    """A table of the report; rows whose ``source`` (a column or index level) names the paper
    are the paper's numbers, set beside ours."""

    frame: pd.DataFrame
    caption: str = ""
    index: bool = True


@dataclass
class Figure:
    path: str  # relative to the report
    caption: str


@dataclass
class Section:
    title: str  # Markdown
    level: int
    blocks: list = field(default_factory=list)  # Markdown text | Table | Figure
    anchor: str = ""


def _slug(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    taken.add(slug)
    return slug


def _public(text: str) -> str:
    """``text`` without local directories: an absolute path is shown by its file name."""
    return re.sub(r"(?<![\w.])/(?:[^\s/()]+/)+([^\s/()]+)", r"\1", str(text))


def _number(value: float | int | str, digits: int) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def _paper_values(values: tuple[float, ...], columns) -> list[str]:
    published = dict(zip(paper.TASK_COLUMNS, values, strict=True))
    return [_number(published[c], 2) if c in published else "" for c in columns]


def _mark(cells: pd.DataFrame, collapsed: pd.DataFrame | None) -> pd.DataFrame:
    """``cells`` with ``COLLAPSED_MARK`` where ``collapsed`` (methods x tasks, 1.0 = collapsed);
    the label prior, one label for every item by construction, is not marked."""
    if collapsed is None:
        return cells
    cells = cells.copy()
    for method in cells.index.intersection(collapsed.index).drop("Label prior", errors="ignore"):
        for task in cells.columns.intersection(collapsed.columns):
            if collapsed.loc[method, task] == 1.0:
                cells.loc[method, task] = f"{cells.loc[method, task]} {COLLAPSED_MARK}"
    return cells


def table3_beside_paper(
    mean: pd.DataFrame,
    std: pd.DataFrame,
    whole: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    collapsed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Our Table 3 (mean ± std) with, under each of our rows, ours by the whole-label metric
    (``whole``: its mean and std) and the paper's rows of the same name (one per model; the
    paper's 'Random' row under Majority). ``collapsed`` (methods x tasks, 1.0 where a method's
    answers collapsed) marks our cells. ``TOP_LABEL_ROW`` is a reference, not a method: its
    source says so. Index: (method, source)."""
    ours = _mark(mean_std_cells(mean, std), collapsed)
    whole_cells = _mark(mean_std_cells(*whole), collapsed) if whole is not None else None
    rows, index = [], []
    for method, cells in ours.iterrows():
        if method == TOP_LABEL_ROW:
            rows.append([_number(v, 2) for v in mean.loc[method]])
            index.append((method, "reference"))
            continue
        rows.append(list(cells))
        index.append((method, "ours"))
        if whole_cells is not None and method in whole_cells.index:
            rows.append(list(whole_cells.loc[method]))
            index.append((method, "ours, whole_label"))
        published = [(m, table.get(method)) for m, table in paper.TABLE3.items()]
        if method == "Majority":
            published = [("'Random' row, all models", paper.MAJORITY)]
        for model, values in published:
            if values is not None:
                rows.append(_paper_values(values, ours.columns))
                index.append((method, f"paper: {model}"))
    return pd.DataFrame(
        rows, columns=ours.columns, index=pd.MultiIndex.from_tuples(index, names=["method", "source"])
    )


def _layer_cell(value) -> str:
    """A matrix row's layer: one number, or per-task layers (``"9/11/12"``) as they are."""
    try:
        return _number(int(value), 0)
    except (TypeError, ValueError):
        return str(value)


def matrix_beside_paper(table: pd.DataFrame, whole: pd.DataFrame | None = None) -> pd.DataFrame:
    """Our specification x query matrix with, under each of our rows, the same by the whole-label
    metric (``whole``, if given) and the paper's patch rows (appendix) under our patch row of the
    same specification and query. Index: (condition, method, source)."""
    columns = list(table.columns)
    rows, index = [], []
    for (condition, method), values in table.iterrows():
        rows.append([_layer_cell(v) if c == "layer" else _number(v, 3) for c, v in values.items()])
        index.append((condition, method, "ours"))
        if whole is not None and (condition, method) in whole.index:
            other = whole.loc[(condition, method)]
            rows.append([_layer_cell(v) if c == "layer" else _number(v, 3) for c, v in other.items()])
            index.append((condition, method, "ours, whole_label"))
        generic = re.sub(r" \([^)]*\)", "", condition)
        if method in ("Patch", "xPatch"):
            for model, published in paper.MATRIX.items():
                if generic in published:
                    rows.append([""] + _paper_values(published[generic], columns[1:]))
                    index.append((condition, method, f"paper: {model}"))
    names = ["condition", "method", "source"]
    return pd.DataFrame(rows, columns=columns, index=pd.MultiIndex.from_tuples(index, names=names))


def table4_beside_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Our Table 4 (per style) and the paper's (per model) in one table. Index: (source, vectors)."""
    rows, index = [], []
    for (style, vectors), values in table.iterrows():
        rows.append([_number(v, 3) for v in values])
        index.append((f"ours ({style})", vectors))
    for model, published in paper.TABLE4.items():
        for vectors, values in published.items():
            rows.append(_paper_values(values, table.columns))
            index.append((f"paper: {model}", vectors))
    return pd.DataFrame(
        rows, columns=table.columns, index=pd.MultiIndex.from_tuples(index, names=["source", "vectors"])
    )


class _Folder:
    """The files of a reproduction folder the report is rendered from."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.config = json.loads((self.root / "config.json").read_text())
        self.context = json.loads((self.root / CONTEXT_FILE).read_text())

    def table(self, name: str, index_col=0, folder: str = "tables") -> pd.DataFrame | None:
        path = self.root / folder / f"{name}.csv"
        return pd.read_csv(path, index_col=index_col) if path.is_file() else None

    def task_order(self, columns) -> list[str]:
        tasks = [t["name"] for t in self.context["tasks"]]
        return [t for t in tasks if t in columns] + [c for c in columns if c not in tasks]


def _document(folder: _Folder) -> tuple[str, list[str], list[Section]]:
    """The report's title, its notices and its sections."""
    run, model = folder.config["reproduce"], folder.config["model"]
    styles = run["styles"]
    title = f"taskvec reproduction of *Task Vectors are Cross-Modal* on `{model['name']}`"
    notices = []
    if run.get("quick"):
        notices.append(
            "**Quick smoke run**: one seed, the first few items per split, every fourth layer. "
            "Numbers here check that the pipeline works; they are not results."
        )
    sections = [
        _setup(folder),
        *_table3_sections(folder),
        _matrix_section(folder),
        Section("3. LLM -> VLM transfer (Table 4)", 2, _transfer_blocks(folder)),
        Section("4. Instructions and ensembling (Fig. 8)", 2, _ensemble_blocks(folder, styles)),
        Section("5. Task conflict (Fig. 9)", 2, _conflict_blocks(folder)),
        Section("6. Inside the model", 2, _analysis_blocks(folder)),
        _claims_section(folder),
    ]
    if folder.context.get("compare_with"):
        sections.append(Section("Both embedded variants side by side", 2, _variants_blocks(folder)))
    sections.append(Section("Files", 2, [FILES_NOTE]))
    taken: set[str] = set()
    for section in sections:
        section.anchor = _slug(section.title, taken)
    return title, notices, sections


def _has_whole_label(folder: _Folder) -> bool:
    """Whether the reproduction scored the whole-label metric beside the paper's (older ones did not)."""
    return folder.table(f"table3_{folder.config['reproduce']['styles'][0]}_whole_label") is not None


def _table3_sections(folder: _Folder) -> list[Section]:
    """Table 3: what it shows, then one section per image style (ours beside the paper's, the
    strict metric, the answers' diversity)."""
    run = folder.config["reproduce"]
    has_whole = _has_whole_label(folder)
    intro = (
        f"Image queries, test split; ours: {spread_phrase(len(run['seeds']))}, the paper's (arXiv v1) under "
        "each of our rows. " + _layer_sentence(run) + " Metric: `paper`, " + METRIC_NOTES["paper"] + "."
    )
    if has_whole:
        intro += (
            " Under each of our rows, the same by `whole_label`: "
            + METRIC_NOTES["whole_label"]
            + "; it credits no lone letter and no echo of the item (docs/metrics.md says what each "
            "metric credits). Label prior: the most frequent validation label answered for every test "
            "item; the test split's top-label share (reference row) is the most any one constant answer "
            "scores. " + COLLAPSE_NOTE + "."
        )
    intro += (
        " The strict metric (" + METRIC_NOTES["strict"] + "), which the paper does not report, follows "
        "each table" + (", then each method's answer diversity." if has_whole else ".")
    )
    sections = [Section("1. Cross-modal transfer (Table 3)", 2, [intro])]
    for style in run["styles"]:
        held = " (a training style)" if style == folder.context["training_style"] else " (held-out style)"
        sections.append(Section(f"Images in `{style}`{held}", 3, _table3_blocks(folder, style, has_whole)))
    return sections


def _table3_blocks(folder: _Folder, style: str, has_whole: bool) -> list:
    """One style's Table 3 beside the paper's, by the strict metric, and its answer diversity."""
    mean, std = folder.table(f"table3_{style}_paper"), folder.table(f"table3_{style}_paper_std")
    diversity = folder.table(f"diversity_{style}", [0, 1])
    collapsed = diversity.xs("collapsed", level="measure") if diversity is not None else None
    whole = None
    if has_whole:
        whole = (
            folder.table(f"table3_{style}_whole_label"),
            folder.table(f"table3_{style}_whole_label_std"),
        )
    strict_mean = folder.table(f"table3_{style}_strict").drop(index=[TOP_LABEL_ROW], errors="ignore")
    strict_std = folder.table(f"table3_{style}_strict_std").drop(index=[TOP_LABEL_ROW], errors="ignore")
    strict = _mark(mean_std_cells(strict_mean, strict_std), collapsed)
    blocks = [
        Table(
            table3_beside_paper(mean, std, whole, collapsed),
            "Ours beside the paper (its LLaVA-1.5, Mantis-Fuyu, Idefics2)",
        ),
        Table(strict, "Strict metric (ours)"),
    ]
    if diversity is not None:
        blocks.append(Table(_diversity_cells(diversity), DIVERSITY_CAPTION))
    return blocks


def _matrix_section(folder: _Folder) -> Section:
    """Table 10 beside the paper's patch rows, and the validation curves the layers came from."""
    has_whole = _has_whole_label(folder)
    section = Section(
        "2. Specification x query (Table 10)",
        2,
        [
            "Test split, the paper's metric"
            + (", each of our rows followed by the same by `whole_label`" if has_whole else "")
            + "; Base / xBase: examples and query in one prompt, Patch / "
            "xPatch: the task vector patched at `layer` (chosen on the validation split). Under our "
            "patch rows, the paper's (appendix; Idefics2 and Mantis-Fuyu, patch rows only).",
            Table(
                matrix_beside_paper(
                    folder.table("matrix_paper", [0, 1]),
                    folder.table("matrix_whole_label", [0, 1]) if has_whole else None,
                )
            ),
            "Validation curves the layers were chosen from; the horizontal lines are the unpatched "
            "baselines of image queries (test split) and the paper's Text ICL xPatch on image queries "
            f"({REFERENCE_MODEL}):",
        ],
    )
    section.blocks += [
        Figure(f"plots/layer_curves_{style}.png", f"per-layer validation accuracy, {style}")
        for style in folder.config["reproduce"]["styles"]
    ]
    return section


def _claims_section(folder: _Folder) -> Section:
    """The paper's claims one by one, each with our verdict."""
    verdicts = folder.table("claims", [0, 1]).astype(object).fillna("")
    return Section(
        "Claims, one by one",
        2,
        [
            "Metric: `paper`, "
            + METRIC_NOTES["paper"]
            + (
                "; beside it, the same checks by `whole_label` (`-`: the claim's measure is no Table 3 "
                "accuracy)"
                if "ours (whole_label)" in verdicts.columns
                else ""
            )
            + ". `held` says whether our numbers agree with the "
            "claim; `note` says where they cannot disagree.",
            Table(verdicts),
        ],
    )


#: the report's last section: where each file of the folder is
FILES_NOTE = (
    "`conditions/<spec>__<query>[-style]/` one protocol run per condition (config, per-item "
    "predictions, per-layer curves, vectors); `transfer/` the LLM -> VLM runs; `tables/` every "
    "table as CSV + Markdown; `plots/`; `analysis/` the analyses; `report_context.json` what "
    "this report states beyond its tables."
)


#: how Table 3 marks a collapsed method
COLLAPSE_NOTE = (
    f"{COLLAPSED_MARK}: the method's answers collapsed (its top answer, a first token, is at least half "
    "of the items and at least twice the test split's top-label share), so its score says little "
    "of the task"
)
DIVERSITY_CAPTION = (
    "Answer diversity (ours): the top answer's share of items / distinct answers per item (first "
    f"tokens, mean over seeds); {COLLAPSED_MARK}: collapsed"
)


def _diversity_cells(diversity: pd.DataFrame) -> pd.DataFrame:
    """``diversity_<style>`` (rows (method, measure)) as one cell per method and task."""
    top = diversity.xs("top_share", level="measure")
    distinct = diversity.xs("distinct", level="measure")
    collapsed = diversity.xs("collapsed", level="measure")
    cells = top.map("{:.2f}".format) + " / " + distinct.map("{:.2f}".format)
    return _mark(cells, collapsed)


def _layer_sentence(run: dict) -> str:
    """How each condition's layer was chosen (``layer_selection`` of the reproduction)."""
    if run.get("layer_selection", "shared") == "per-task":
        return (
            "Layer selection `per-task`: each task's xPatch is read at its own best validation layer, "
            "per condition (Table 10 lists them)."
        )
    return (
        "Layer selection `shared` (the paper's protocol): one layer per condition for all tasks, the "
        "best of their mean validation curve (Table 10 lists it), so a task's number depends on the "
        "tasks run beside it; `--layer-selection per-task` gives each task its own."
    )


def _setup(folder: _Folder) -> Section:
    run, model, context = folder.config["reproduce"], folder.config["model"], folder.context
    llm = context["llm"]
    lines = [
        f"- model: `{model['name']}` ({_public(model.get('model_id'))}), {model['num_layers']} decoder "
        f"layers, width {model['hidden_size']}, computing in {model['numerics']}, fingerprint "
        f"`{model['fingerprint']}`",
        f"- template `{run['template']}`, {len(run['seeds'])} seed(s) {run['seeds']}, N = 5 examples per "
        "prompt, demonstrations drawn per query from the validation split",
        f"- image styles: {', '.join(run['styles'])} (`{context['training_style']}` is a training style of "
        "the embedded VLM; `openmoji` is held out of its training)",
        "- tasks: " + ", ".join(f"{t['name']} ({t['val']} val / {t['test']} test)" for t in context["tasks"]),
        f"- base LLM for Table 4: `{llm}`" if llm is not None else "- base LLM: none known; Table 4 skipped",
        "- wall time per stage (s): " + ", ".join(f"{k} {v}" for k, v in context["timings"].items()),
    ]
    if context.get("condition_seconds"):
        lines.append(
            "- the matrix by condition (s; the first condition of a group that shares examples or queries "
            "computes what they share, later ones reuse it; a resumed condition counts its last part only): "
            + ", ".join(f"{label} {seconds}" for label, seconds in context["condition_seconds"].items())
        )
    blocks: list = ["\n".join(lines)]
    if context.get("recognition"):
        blocks += [
            "The embedded VLM's first-token recognition of the task entities (bare image query, strict):",
            Table(pd.DataFrame(context["recognition"]).T.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")),
            "Its projector mixes the LLM's own embeddings of entity names by the recogniser's posterior "
            "(plus learned image slots and a low-rank visual term), so its image tokens start near the text "
            "of the object's name: cross-modal transfer is an easier test here than in the paper's VLMs.",
        ]
    return Section("Set-up", 2, blocks)


def _transfer_blocks(folder: _Folder) -> list:
    llm = folder.context["llm"]
    table = folder.table("table4", [0, 1])
    if llm is None or table is None:
        return ["No base LLM is known for this model (pass `--llm`), so this experiment was skipped."]
    table = table.rename_axis(["style", "vectors"])[folder.task_order(table.columns)]
    blocks: list = [
        "Image queries, test split, the paper's metric"
        + (
            " (rows marked `(whole_label)`: the same by the whole-label metric)"
            if any("whole_label" in str(v) for v in table.index.get_level_values("vectors"))
            else ""
        )
        + "; our rows per image style, the paper's per model.",
        Table(table4_beside_paper(table)),
    ]
    if folder.context.get("llm_is_the_frozen_language_model"):
        blocks.append(
            f"The embedded VLM's language model is `{llm}` itself, frozen: on text prompts the two "
            "run the very same modules on the same tokens (tested bit for bit), so the LLM's text-ICL "
            "vectors are the VLM's and the two rows agree by construction. This stage therefore computes "
            "nothing new: the LLM -> VLM runs share the VLM -> VLM runs' vectors, sweeps and answers."
        )
    similarity = folder.table("table4_similarity")
    if similarity is not None:
        blocks += ["Cosine similarity of task vectors (mean over tasks and seeds):", Table(similarity)]
    return blocks


def _ensemble_blocks(folder: _Folder, styles: list[str]) -> list:
    scores = folder.table("ensemble_scores", None)
    blocks: list = []
    for style in styles:
        summary = folder.table(f"ensemble_{style}", [0, 1])
        if summary is None or scores is None:
            continue
        layer = int(scores[scores["style"] == style]["layer"].iloc[0])
        blocks += [
            f"Images in `{style}`, patched at layer {layer} (the Text ICL -> image layer), test split, "
            "case-insensitive as in the paper; n = examples behind the exemplar vector (n / 5 five-shot "
            "prompts averaged); n = 0 is the instruction alone.",
            Table(summary),
            Figure(f"plots/ensemble_{style}.png", f"ensembling, {style}"),
        ]
    return blocks or ["Skipped."]


def _conflict_blocks(folder: _Folder) -> list:
    summary = folder.table("conflict_summary", [0, 1])
    rows = folder.table("conflict_outputs", None)
    if summary is None or rows is None or not len(rows):
        return [
            "Skipped: no conflicting pair of tasks (capital/currency, latin/young, color/flavor) was run."
        ]
    run = folder.config["reproduce"]
    examples = (
        rows.groupby(["prompted", "patched"], sort=False)
        .head(2)[["prompted", "patched", "input", "control", "output", "patched_label"]]
        .set_index(["prompted", "patched"])
    )
    return [
        f"The prompt is task A's instruction + an image query (`{folder.context['training_style']}`); "
        f"task B's text-ICL vector is patched at layer {int(rows['layer'].iloc[0])}; "
        f"{run['answer_tokens']} greedy tokens.",
        Table(summary),
        "Examples:",
        Table(examples.fillna("")),
    ]


def _analysis_blocks(folder: _Folder) -> list:
    analysis = folder.context.get("analysis")
    if analysis is None:
        return ["Skipped."]
    blocks: list = [
        f"Analyses at layer {analysis['layer']} ({analysis['layer_source']}); full output in `analysis/`."
    ]
    titles = {
        ("decodings_table", 0): "Top decodings of the task vectors (logit lens), per task and specification",
        ("phase_ranges", None): "Layers of the three phases (input, task, answer)",
    }
    for (name, index), title in titles.items():
        table = folder.table(name, index, folder="analysis/tables")
        if table is not None:
            blocks.append(Table(table, title, index=index is not None))
    for plot in sorted((folder.root / "analysis" / "plots").glob("*.png")):
        blocks.append(Figure(f"analysis/plots/{plot.name}", plot.stem))
    return blocks


# --- two variants of one model, side by side -------------------------------------------------------
#: Table 3 rows (image queries) the side-by-side summary shows
VARIANT_ROWS = ("No Context", "Text ICL xBase", "Text ICL xPatch", "Image ICL Base", "Image ICL Patch")


def _mean_recognition(context: dict) -> float | None:
    """Mean strict recognition over the embedded VLM's training styles (the held-out style left out)."""
    from taskvec.tasks.images import TRAINING_STYLES

    recognition = context.get("recognition")
    if not recognition:
        return None
    cells = [
        value
        for style, row in recognition.items()
        if style in TRAINING_STYLES
        for value in row.values()
        if value is not None and not (isinstance(value, float) and math.isnan(value))
    ]
    return sum(cells) / len(cells) if cells else None


def _shared_metrics(folders: list[_Folder], style: str) -> list[str]:
    """The metrics whose Table 3 every folder has, ``paper`` first."""
    found = [
        {p.stem[len(f"table3_{style}_") :] for p in (f.root / "tables").glob(f"table3_{style}_*.csv")}
        for f in folders
    ]
    metrics = {m for m in set.intersection(*found) if not m.endswith("_std")}
    return sorted(metrics, key=lambda m: (m != "paper", m))


def variant_summary(folders: list[_Folder]) -> pd.DataFrame:
    """The figures that tell the variants apart, one column per folder's model: Table 3 averages
    on image queries per style and metric, text -> text Base and Patch and Table 4 (the paper's
    metric and the whole-label one), Table 4's cosine, and recognition."""
    names = [f.config["model"]["name"] for f in folders]
    styles = [
        s
        for s in folders[0].config["reproduce"]["styles"]
        if all(s in f.config["reproduce"]["styles"] for f in folders[1:])
    ]
    rows: dict[tuple[str, str], list] = {}
    for style in styles:
        for metric in _shared_metrics(folders, style):
            tables = [f.table(f"table3_{style}_{metric}") for f in folders]
            for row in VARIANT_ROWS:
                rows[(f"Table 3, images in {style}, {metric}", row)] = [
                    float(t.loc[row, "average"]) if row in t.index else None for t in tables
                ]
    for metric in ("paper", "whole_label"):
        matrices = [f.table(f"matrix_{metric}", [0, 1]) for f in folders]
        for method, row in (("Base", "Text ICL Base"), ("Patch", "Text ICL Patch")):
            key = ("Text ICL -> text", method)
            rows[(f"text -> text, {metric}", row)] = [
                float(m.loc[key, "average"]) if m is not None and key in m.index else None for m in matrices
            ]
    for style in styles:
        for metric, suffix in (("paper", ""), ("whole_label", " (whole_label)")):
            for vectors in ("VLM -> VLM xPatch", "LLM -> VLM xPatch"):
                values = []
                for f in folders:
                    table = f.table("table4", [0, 1])
                    present = table is not None and (style, vectors + suffix) in table.index
                    values.append(float(table.loc[(style, vectors + suffix), "average"]) if present else None)
                rows[(f"Table 4, images in {style}, {metric}", vectors)] = values
    for pair in ("LLM text ICL vs VLM text ICL", "LLM text ICL vs VLM image ICL"):
        values = []
        for f in folders:
            table = f.table("table4_similarity")
            values.append(
                float(table.loc[pair, "same task"]) if table is not None and pair in table.index else None
            )
        rows[("Table 4 cosine (same task)", pair)] = values
    rows[("recognition", "mean strict, training styles")] = [_mean_recognition(f.context) for f in folders]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=names)
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["figure", "row"])
    return frame.map(lambda v: _number(v, 3) if v is not None else "")


def variant_claims(folders: list[_Folder]) -> pd.DataFrame:
    """The claims table of each folder's model beside each other: ours and the verdict per model."""
    merged = None
    for f in folders:
        name = f.config["model"]["name"]
        table = f.table("claims", [0, 1]).astype(object).fillna("")
        part = table[["ours", "held"]].rename(columns={"ours": f"{name}: ours", "held": f"{name}: held"})
        merged = table[["paper"]].join(part) if merged is None else merged.join(part, how="left")
    return merged.fillna("")


def _variants_blocks(folder: _Folder) -> list:
    other = _Folder(folder.root / folder.context["compare_with"])
    folders = [folder, other]
    names = [f"`{f.config['model']['name']}`" for f in folders]
    blocks: list = [
        f"This report's model, {names[0]}, beside {names[1]} (its reproduction: "
        f"`{folder.context['compare_with']}`), same protocol. One embedded VLM keeps its language model "
        "frozen, so on text it is its base LLM and Table 4 holds by construction; the other's language "
        "model was tuned with LoRA during alignment (`taskvec align --stage lora`), so its text-ICL "
        "vectors are its own and Table 4 is an experiment.",
        Table(variant_summary(folders), "Figures that tell the variants apart (6-task means over seeds)"),
        Table(variant_claims(folders), "The paper's claims on both (the paper's metric)"),
    ]
    return blocks


# --- Markdown and HTML ----------------------------------------------------------------------------
def _markdown(title: str, notices: list[str], sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for notice in notices:
        lines += [f"> {notice}", ""]
    for section in sections:
        lines += [f"{'#' * section.level} {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                if block.caption:
                    lines += [f"**{block.caption}**", ""]
                lines += [markdown_table(block.frame, index=block.index), ""]
            elif isinstance(block, Figure):
                lines += [f"![{block.caption}]({block.path})", ""]
            else:
                lines += [block, ""]
    return "\n".join(lines)


def _inline_html(text: str) -> str:
    """One line of the report's Markdown (titles, captions) as HTML: `code`, **strong**, *em*;
    never a list or a paragraph, whatever the line starts with ("1. Cross-modal ...")."""
    from markupsafe import escape

    html = str(escape(text))
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    html = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", html)


_NUMBER = re.compile(r"-?\d+(\.\d+)?(e-?\d+)?( ± \d+(\.\d+)?)?( †)?")  # † marks a collapsed method


def _cell_text(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:g}"
    return str(value)


def _table_html(table: Table, escape) -> str:
    """A table as HTML: index levels as leading header columns, columns of numbers right-aligned,
    the paper's rows (a ``source`` naming the paper) marked ``class="paper"``."""
    frame = table.frame
    if isinstance(frame.columns, pd.MultiIndex):
        frame = frame.set_axis([" / ".join(map(str, label)) for label in frame.columns], axis=1)
    levels = list(frame.index.names) if table.index else []
    keys = [k if isinstance(k, tuple) else (k,) for k in frame.index] if table.index else [()] * len(frame)
    columns = {name: [_cell_text(v) for v in frame[name]] for name in frame.columns}
    numeric = {name: all(not t or _NUMBER.fullmatch(t) for t in texts) for name, texts in columns.items()}
    head = "".join(f"<th>{escape('' if n is None else str(n))}</th>" for n in levels)
    head += "".join(f"<th{' class=num' if numeric[c] else ''}>{escape(str(c))}</th>" for c in frame.columns)
    source = [str(k[levels.index("source")]) for k in keys] if "source" in levels else None
    if source is None and "source" in columns:
        source = columns["source"]
    body = []
    for row, key in enumerate(keys):
        marker = ' class="paper"' if source is not None and source[row].startswith("paper") else ""
        parts = [f'<th scope="row">{escape(str(k))}</th>' for k in key]
        for name, texts in columns.items():
            cell = escape(texts[row])
            parts.append(f'<td class="num">{cell}</td>' if numeric[name] else f"<td>{cell}</td>")
        body.append(f"<tr{marker}>" + "".join(parts) + "</tr>")
    return (
        "<table>\n<thead><tr>" + head + "</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"
    )


def _html(title: str, notices: list[str], sections: list[Section]) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup, escape

    environment = Environment(
        loader=PackageLoader("taskvec.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    rendered = []
    for section in sections:
        blocks = []
        for block in section.blocks:
            if isinstance(block, Table):
                blocks.append(
                    {
                        "kind": "table",
                        "caption": Markup(_inline_html(block.caption)),
                        "html": Markup(_table_html(block, escape)),
                    }
                )
            elif isinstance(block, Figure):
                blocks.append({"kind": "figure", "path": block.path, "caption": block.caption})
            else:
                blocks.append(
                    {
                        "kind": "text",
                        "html": Markup(_block_html(block)),
                    }
                )
        rendered.append(
            {
                "title": Markup(_inline_html(section.title)),
                "level": section.level,
                "anchor": section.anchor,
                "blocks": blocks,
            }
        )
    contents = []
    for section in rendered:
        if section["level"] == 2 or not contents:
            contents.append({**section, "children": []})
        else:
            contents[-1]["children"].append(section)
    stylesheet = resources.files("taskvec.report").joinpath("templates", "report.css").read_text()
    return environment.get_template("report.html.j2").render(
        title=Markup(_inline_html(title)),
        title_text=re.sub(r"[*`]", "", title),
        notices=[Markup(_inline_html(n)) for n in notices],
        sections=rendered,
        contents=contents,
        stylesheet=Markup(stylesheet),
    )


def _block_html(text: str) -> str:
    import markdown

    return markdown.markdown(text)


def render_report(folder: str | Path, plots: bool = False) -> Path:
    """Write ``report.md`` and ``report.html`` of the reproduction in ``folder`` from its files
    (``config.json``, ``report_context.json``, ``tables/``, ``analysis/tables/``, the plots), with
    no model; with ``plots``, draw the figures again from the tables first. Returns the path of
    ``report.md``. Equal files give equal reports, byte for byte."""
    root = Path(folder)
    source = _Folder(root)
    if plots:
        from taskvec.analysis import plots as analysis_plots

        _draw_plots(root, list(source.config["reproduce"]["styles"]))
        if (root / "analysis" / "tables").is_dir():
            analysis_plots.redraw(root / "analysis", source.config["model"]["name"])
    title, notices, sections = _document(source)
    write_atomic(root / "report.md", _markdown(title, notices, sections))
    write_atomic(root / "report.html", _html(title, notices, sections))
    return root / "report.md"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m taskvec.report.reproduce",
        description="Render report.md and report.html of a reproduction folder from its tables "
        "(no model runs).",
    )
    parser.add_argument("--render", metavar="FOLDER", required=True, help="the reproduction folder")
    parser.add_argument("--plots", action="store_true", help="draw the figures again from the tables first")
    parser.add_argument(
        "--compare-with",
        metavar="FOLDER",
        help="another reproduction of a variant of the model (e.g. the embedded VLM with a frozen and "
        "with a LoRA-tuned LLM), shown side by side; recorded in report_context.json",
    )
    args = parser.parse_args(argv)
    if args.compare_with:
        compare_with(args.render, args.compare_with)
    print(render_report(args.render, plots=args.plots))


def compare_with(folder: str | Path, other: str | Path) -> None:
    """Record ``other`` (a reproduction folder, stored relative to ``folder``) as the variant the
    report of ``folder`` shows side by side with its own model."""
    import os

    root, other = Path(folder), Path(other)
    _Folder(other)  # a folder without config.json / report_context.json fails here, in one line
    context = json.loads((root / CONTEXT_FILE).read_text())
    context["compare_with"] = os.path.relpath(other.resolve(), root.resolve())
    write_json(root / CONTEXT_FILE, context)


__all__ = ["claims", "compare_with", "render_report", "variant_claims", "variant_summary", "write_report"]

if __name__ == "__main__":
    main()


def _frozen_base(adapter) -> bool:
    """Whether the model's language model is its base LLM unchanged (LLM -> VLM identical by
    construction)."""
    base = adapter.base_language_model()
    return base is not None and base.frozen
