"""The report as a document: its title, notices and sections (text, our tables beside the
paper's, figures), read from a reproduction folder's files alone."""

from __future__ import annotations

import re

import pandas as pd

from taskvec.errors import warning_message
from taskvec.evaluation.metrics import METRIC_NOTES
from taskvec.experiments.conditions import TOP_LABEL_ROW
from taskvec.experiments.conflict import PAIRS
from taskvec.experiments.paper import average_note
from taskvec.pipelines.reproduce import BASELINE_COSINE
from taskvec.report.reproduce.beside_paper import (
    matrix_beside_paper,
    table3_beside_paper,
    table4_beside_paper,
)
from taskvec.report.reproduce.folder import ReproductionFolder
from taskvec.report.reproduce.layout import COLLAPSED_MARK, NOT_JUDGED_MARK, Figure, Section, Table, mark
from taskvec.report.reproduce.plots import REFERENCE_MODEL
from taskvec.report.reproduce.variants import variants_blocks
from taskvec.report.tables import mean_std_cells, spread_phrase
from taskvec.storage.markdown import fixed
from taskvec.tasks.images import TRAINING_STYLES
from taskvec.tasks.task import AVERAGE

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
    f"of the task; {NOT_JUDGED_MARK}: its top answer is at least half of the items on a split whose top "
    "label is over half of it, where the rule cannot tell a method that knows the items from one that "
    "answers that label for all of them (compare it with the label prior)"
)
#: the caption of each style's answer-diversity table
DIVERSITY_CAPTION = (
    "Answer diversity (ours): the top answer's share of items / distinct answers per item (first "
    f"tokens, mean over seeds); {COLLAPSED_MARK}: collapsed; {NOT_JUDGED_MARK}: not judged (the split's top "
    "label is over half of it)"
)


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


def document(folder: ReproductionFolder) -> tuple[str, list[str], list[Section]]:
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
        sections.append(Section("Both embedded variants side by side", 2, variants_blocks(folder)))
    sections.append(Section("Files", 2, [FILES_NOTE]))
    taken: set[str] = set()
    for section in sections:
        section.anchor = _slug(section.title, taken)
    return title, notices, sections


def _has_whole_label(folder: ReproductionFolder) -> bool:
    """Whether the reproduction scored the whole-label metric beside the paper's (older ones did not)."""
    return folder.table(f"table3_{folder.config['reproduce']['styles'][0]}_whole_label") is not None


def _table3_sections(folder: ReproductionFolder) -> list[Section]:
    """Table 3: what it shows, then one section per image style (ours beside the paper's, the
    strict metric, the answers' diversity)."""
    run = folder.config["reproduce"]
    has_whole = _has_whole_label(folder)
    intro = (
        f"Image queries, test split; ours: {spread_phrase(len(run['seeds']))}, the paper's (arXiv v1) under "
        "each of our rows. " + _layer_sentence(run) + " Metric: `paper`, " + METRIC_NOTES["paper"] + "."
    )
    note = average_note(folder.table(f"table3_{run['styles'][0]}_paper").columns)
    if note:
        intro += f" {note[:-1]} (here, in Table 10 and in Table 4)."
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
        heading = f"Images in {_named_style(folder.context, style)}"
        sections.append(Section(heading, 3, _table3_blocks(folder, style, has_whole)))
    return sections


def _over_launches(context: dict) -> str:
    """Where several launches finished the folder (one run again after it was complete), that
    the stage times are their sum; where it was resumed after a launch stopped part-way, that the
    times leave out what that launch computed; nothing for the usual one launch."""
    launches = context.get("launches", 1)
    summed = f", summed over the {launches} launches that finished it" if launches > 1 else ""
    if context.get("after_a_stopped_launch"):
        summed += (
            "; resumed after a launch stopped part-way: the work that launch did is reused here "
            "and its time is not counted"
        )
    return summed


def _named_style(context: dict, style: str) -> str:
    """``style`` with what it is to the model where the report knows: the embedded VLM (the one
    whose recognition the report shows) was trained on every suite style but one; of another
    VLM it knows nothing, whatever the order of the styles."""
    if not context.get("recognition"):
        return f"`{style}`"
    return f"`{style}` ({'a training style' if style in TRAINING_STYLES else 'held out of training'})"


def _table3_blocks(folder: ReproductionFolder, style: str, has_whole: bool) -> list:
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
    strict = mark(mean_std_cells(strict_mean, strict_std), collapsed)
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


def _matrix_section(folder: ReproductionFolder) -> Section:
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
            *_flat_layers(folder.context.get("flat_layers") or {}),
            *_tied_layers(folder.context.get("tied_layers") or {}),
            _curves_caption(folder.config["reproduce"].get("layer_selection", "shared")),
        ],
    )
    section.blocks += [
        Figure(f"plots/layer_curves_{style}.png", f"per-layer validation accuracy, {style}")
        for style in folder.config["reproduce"]["styles"]
    ]
    return section


def _curves_caption(selection: str) -> str:
    """What the layer-curve figures show; under per-task selection the mean curve is not what a
    task's layer was chosen on."""
    chosen = (
        "Validation curves, the mean over tasks per condition (under `per-task` selection each task's "
        "layer was chosen on its own curve; Table 10 lists them)"
        if selection == "per-task"
        else "Validation curves the layers were chosen from, a ring at the layer each condition was read at"
    )
    return (
        f"{chosen}; a dot at each layer swept; the horizontal lines are the unpatched baselines of image "
        f"queries (test split) and the paper's Text ICL xPatch on image queries ({REFERENCE_MODEL}):"
    )


def _tied_layers(tied: dict[str, dict[str, list[int]]]) -> list[str]:
    """The conditions whose best validation value several layers share: the tie rule (the lowest)
    chose among them, so the layer read is one of several the data could not tell apart."""
    if not tied:
        return []
    parts = []
    for condition, curves in tied.items():
        named = ", ".join(
            ("the tasks' mean" if curve == AVERAGE else curve) + f" (layers {', '.join(map(str, layers))})"
            for curve, layers in curves.items()
        )
        parts.append(f"{condition}: {named}")
    return [
        "**Tied best layers** (several layers share the best validation value), where the tie rule (the "
        "lowest) chose among them: " + "; ".join(parts) + "."
    ]


def _flat_layers(flat: dict[str, dict[str, float]]) -> list[str]:
    """The conditions whose layer the tie rule chose on a flat validation curve, not the data
    (common with `--quick`'s six items): said under Table 10, so such a layer is not read as a
    finding (a run's report says it beside its layer)."""
    if not flat:
        return []
    parts = []
    for condition, curves in flat.items():
        named = ", ".join(
            f"the tasks' mean ({fixed(value)})" if curve == AVERAGE else f"{curve} ({fixed(value)})"
            for curve, value in curves.items()
        )
        parts.append(f"{condition}: {named}")
    return [
        "**Flat validation curves** (one value at every layer swept), where the tie rule (the lowest "
        "layer), not the data, chose the layer: " + "; ".join(parts) + "."
    ]


def _claims_section(folder: ReproductionFolder) -> Section:
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
            "claim; `note` says where they cannot disagree. A claim that compares two methods gives "
            "their difference with a 95% interval over the test items (both methods answer the same "
            "items: each item's score is averaged over the seeds, items are paired, tasks weigh "
            "alike); `within noise` marks a verdict that interval does not settle. The `± std` of "
            "the tables is the spread over seeds, which redraw only the demonstrations: it is no "
            "interval over items.",
            Table(verdicts),
        ],
    )


def _diversity_cells(diversity: pd.DataFrame) -> pd.DataFrame:
    """``diversity_<style>`` (rows (method, measure)) as one cell per method and task."""
    top = diversity.xs("top_share", level="measure")
    distinct = diversity.xs("distinct", level="measure")
    collapsed = diversity.xs("collapsed", level="measure")
    cells = top.map(fixed) + " / " + distinct.map(fixed)
    return mark(cells, collapsed)


def _layer_sentence(run: dict) -> str:
    """How each condition's layer was chosen (``layer_selection`` of the reproduction)."""
    if run.get("layer_selection", "shared") == "per-task":
        return (
            "Layer selection `per-task`: each task's xPatch is read at its own best validation layer, "
            "per condition (Table 10 lists them), and Table 4's cosines at each task's Text ICL -> image "
            "layer; the analyses compare tasks at one layer (section 6)."
        )
    return (
        "Layer selection `shared` (the paper's protocol): one layer per condition for all tasks, the "
        "best of their mean validation curve (Table 10 lists it), so a task's number depends on the "
        "tasks run beside it; `--layer-selection per-task` gives each task its own."
    )


def _setup(folder: ReproductionFolder) -> Section:
    run, model, context = folder.config["reproduce"], folder.config["model"], folder.context
    llm = context["llm"]
    lines = [
        f"- model: `{model['name']}` ({_public(model.get('model_id'))}), {model['num_layers']} decoder "
        f"layers, width {model['hidden_size']}, computing in {model['numerics']}, fingerprint "
        f"`{model['fingerprint']}`",
        f"- template `{run['template']}`, {len(run['seeds'])} seed(s) {run['seeds']}, N = 5 examples per "
        "prompt, demonstrations drawn per query from the validation split",
        "- image styles: "
        + ", ".join(_named_style(context, style) for style in run["styles"])
        + "; Table 4's cosines, Fig. 9 and the analyses use the first",
        "- tasks: " + ", ".join(f"{t['name']} ({t['val']} val / {t['test']} test)" for t in context["tasks"]),
        f"- base LLM for Table 4: `{llm}`" if llm is not None else "- base LLM: none known; Table 4 skipped",
        f"- wall time per stage (s{_over_launches(context)}): "
        + ", ".join(f"{k} {v}" for k, v in context["timings"].items()),
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
            Table(pd.DataFrame(context["recognition"]).T.map(lambda v: "" if pd.isna(v) else fixed(v, 3))),
            "Its projector mixes the LLM's own embeddings of entity names by the recogniser's posterior "
            "(plus learned image slots and a low-rank visual term), so its image tokens start near the text "
            "of the object's name: cross-modal transfer is an easier test here than in the paper's VLMs.",
        ]
    warned = _warnings_block(context.get("warnings") or {})
    return Section("Set-up", 2, [*blocks, *warned])


def _warnings_block(warned: dict[str, list[str]]) -> list:
    """What was said of the runs' inputs while they were computed, each warning once, with the
    runs it was said in (a label the answer budget cuts is said in every condition)."""
    runs: dict[str, list[str]] = {}
    for label, texts in warned.items():
        for text in texts:
            runs.setdefault(warning_message(text), []).append(label)
    if not runs:
        return []
    lines = [f"- {text} (said in: {', '.join(labels)})" for text, labels in runs.items()]
    return [
        "**Warnings** said of the runs' inputs while they were computed (each run's results.json "
        "keeps its own); they bear on what the numbers below mean:",
        "\n".join(lines),
    ]


def _transfer_blocks(folder: ReproductionFolder) -> list:
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
    elif folder.context.get("llm_vectors_equal_the_vlms"):
        blocks.append(
            f"The text-ICL vectors `{llm}` gave equal the VLM's, value for value, on every task and "
            "seed: the VLM's language model computes text as this LLM does (trained with it frozen, "
            "or `--llm` named that very model), so the two rows agree by construction and are no "
            "evidence of transfer."
        )
    similarity = folder.table("table4_similarity")
    if similarity is not None:
        blocks += ["Cosine similarity of task vectors (mean over tasks and seeds):", Table(similarity)]
        if similarity[BASELINE_COSINE].isna().all():
            blocks.append("One task was run, so there is no pair of different tasks: no baseline.")
    return blocks


def _ensemble_blocks(folder: ReproductionFolder, styles: list[str]) -> list:
    scores = folder.table("ensemble_scores", None)
    blocks: list = []
    for style in styles:
        summary = folder.table(f"ensemble_{style}", [0, 1])
        if summary is None or scores is None:
            continue
        layers = _at_layers(scores[scores["style"] == style], "task")
        blocks += [
            f"Images in `{style}`, patched {layers} (the Text ICL -> image layer), test split, "
            "case-insensitive as in the paper; n = examples behind the exemplar vector (n / 5 five-shot "
            "prompts averaged); n = 0 is the instruction alone. `mean` and `std`: over seeds, of the "
            "accuracy averaged over the tasks.",
            Table(summary),
            Figure(f"plots/ensemble_{style}.png", f"ensembling, {style}"),
        ]
    return blocks or ["Skipped."]


def _at_layers(rows: pd.DataFrame, task_column: str) -> str:
    """Where ``rows`` were patched: "at layer 11", or, where tasks chose their own layers
    (``--layer-selection per-task``), "at each task's layer (a 10, b 12)"."""
    by_task = rows.drop_duplicates(task_column).set_index(task_column)["layer"].astype(int)
    if by_task.nunique() == 1:
        return f"at layer {by_task.iloc[0]}"
    return "at each task's layer (" + ", ".join(f"{task} {layer}" for task, layer in by_task.items()) + ")"


def _conflict_blocks(folder: ReproductionFolder) -> list:
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
        f"task B's text-ICL vector (seed {run['seeds'][0]}) is patched {_at_layers(rows, 'patched')}; "
        f"{run['answer_tokens']} greedy tokens. An answer fits a task by the paper's prefix rule "
        "(either way, case-insensitive) and, in the columns marked `(whole_label)`, only with the "
        "whole label or an alias; `control: patched task` is how often the unpatched answer already "
        "fits the patched task (an answer both tasks accept, or the item's own name).",
        Table(summary),
        *_conflicts_without_items(folder, summary),
        "Examples:",
        Table(examples.fillna("")),
    ]


def _conflicts_without_items(folder: ReproductionFolder, summary: pd.DataFrame) -> list[str]:
    """The directions of a conflicting pair that was run but shares no test item (common on
    ``--quick``'s few items), so the table's missing rows are said, not silently absent."""
    tasks = {task["name"] for task in folder.context["tasks"]}
    missing = [
        f"{prompted} <- {patched}"
        for first, second in PAIRS
        if first in tasks and second in tasks
        for prompted, patched in ((first, second), (second, first))
        if (prompted, patched) not in summary.index
    ]
    if not missing:
        return []
    return [
        "No test item of the prompted task shares its input with the patched task, so no row for: "
        + ", ".join(missing)
        + "."
    ]


def _analysis_layer_source(folder: ReproductionFolder, analysis: dict) -> str:
    """Why the analyses read the layer they do: the reproduction gives them its Text ICL -> image
    layer, one for all tasks (they compare tasks at one layer) also where tasks chose their own."""
    if analysis["layer_source"] != "given":
        return f"({analysis['layer_source']}); full output in `analysis/`"
    if folder.config["reproduce"].get("layer_selection", "shared") == "per-task":
        return (
            "the best of the tasks' mean validation curve for Text ICL -> image: the analyses compare "
            "tasks at one layer, not at each task's own; full output in `analysis/`"
        )
    return "the layer Text ICL -> image chose on validation; full output in `analysis/`"


def _analysis_blocks(folder: ReproductionFolder) -> list:
    analysis = folder.context.get("analysis")
    if analysis is None:
        return ["Skipped."]
    blocks: list = [f"Analyses at layer {analysis['layer']}, {_analysis_layer_source(folder, analysis)}."]
    titles = {
        ("decodings_table", 0): "Top decodings of the task vectors (logit lens), per task and specification",
        ("phase_ranges", None): "Layers of the three phases (input, task, answer)",
    }
    for (name, index), title in titles.items():
        table = folder.table(name, index, folder="analysis/tables")
        if table is not None:
            blocks.append(Table(table, title, index=index is not None))
    for plot in sorted((folder.root / "analysis" / "plots").glob("*.png")):
        blocks.append(Figure(f"analysis/plots/{plot.name}", _analysis_caption(plot.stem)))
    return blocks


def _analysis_caption(stem: str) -> str:
    """What an analysis figure shows, from its file name (the name alone told a reader little)."""
    if stem.startswith("top1_"):
        return f"{stem}: the share of each top-1 logit-lens token at the chosen layers, {stem[5:]} prompts"
    if stem.startswith("similarity_layer"):
        return f"{stem}: cosine of the task vectors (task / specification) at layer {stem[16:]}"
    if stem.startswith("embedding_"):
        method = stem[10:]
        return f"{stem}: per-prompt task vectors in two dimensions ({method}); colour task, marker spec"
    captions = {
        "phases": "phases: the logit lens's mass on input, task and answer tokens per layer",
        "phases_relative": "phases_relative: the same masses, each scaled to its peak",
        "similarity_by_layer": "similarity_by_layer: same-task cosine against its baseline, per layer",
    }
    return captions.get(stem, stem)
