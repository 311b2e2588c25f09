"""``analyze``: every analysis for a model and its tasks, written into one folder.

One pass of forward runs per (task, specification) (``collect``) feeds all of them: logit-lens
phases, top-1 decodings, task-vector decodings, similarity and embedding maps. The folder gets
the tables as CSV and the task vectors; like a run folder it says ``running`` in ``status.json``
until its last write. ``report.analysis`` then writes what a reader reads from the tables: their
Markdown, the plots and ``summary.md``.

Each (task, specification) is a resumable piece: its states and phase curve go to
``units/<task>__<spec>.safetensors`` (stamped with the analysis identity, beside its vector) as
soon as they are computed, and the tables (similarity, embeddings, decodings, phase ranges) are
assembled from the pieces on disk afterwards. An interrupted analysis keeps its pieces, and the
ranks of a launch share them out (``pipelines.ranks``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pandas as pd
import torch
from pydantic import Field, field_validator
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file as load_tensors
from safetensors.torch import save as save_tensors

from taskvec.analysis.collect import ANALYSIS_SPECS, SpecStates, collect, default_specs
from taskvec.analysis.embedding import METHODS, umap_available
from taskvec.analysis.lens import (
    MASS,
    phase_curve,
    phase_masses,
)
from taskvec.analysis.results import (
    LAYER_OF_RUN,
    LAYER_OF_RUN_MEAN,
    LAYER_PEAK,
    AnalysisTables,
    analysis_tables,
)
from taskvec.analysis.token_sets import TokenSets, check_words_name_tasks, load_words, token_sets
from taskvec.config import DEFAULT_MODEL, BatchedOptions, MemoryBudgetMB, digest
from taskvec.errors import ConfigError, TaskvecError
from taskvec.evaluation.protocol import (
    check_demonstrations_fit,
    check_inputs_distinct,
    check_instruction_ends_at_delimiter,
)
from taskvec.models.adapter import ModelAdapter, require_adapter
from taskvec.models.batching import sized_to
from taskvec.models.registry import (
    check_layers_before_loading,
    fingerprint_before_loading,
    load_model,
    names_of,
    sees_images,
)
from taskvec.models.shared_work import SharedWork
from taskvec.pipelines.progress import announce, progress_bar
from taskvec.pipelines.ranks import current as current_ranks
from taskvec.pipelines.results import checked_results, unfinished
from taskvec.prompts.template import PromptTemplate, get_template
from taskvec.storage.run_folder import RunFolder, text_checksum, write_atomic, write_json
from taskvec.tasks.images import DEFAULT_STYLE, Style
from taskvec.tasks.registry import BUILTIN_TASKS, TaskReferences, canonical_task_name, load_task, load_tasks
from taskvec.tasks.task import Task
from taskvec.vectors.task_vector import TaskVector

#: what a reader reads first (written by ``report.analysis``)
SUMMARY_FILE = "summary.md"
#: the tables a complete analysis folder is read back with (``finished_analysis``): the one
#: ``taskvec analyze`` prints (its summary.md and plots are in the folder already)
READ_BACK_TABLES: dict[str, int | None] = {"decodings_table": 0}


class AnalysisConfig(BatchedOptions):
    """What the analyses read; its hash (with the weights and task data) names the folder's content."""

    kind: ClassVar[str] = "analysis options"

    model: str = DEFAULT_MODEL
    tasks: TaskReferences = Field(default_factory=lambda: list(BUILTIN_TASKS), min_length=1)
    #: None: every specification the model can read (image ICL only for VLMs)
    specs: list[str] | None = None
    template: PromptTemplate = Field(default_factory=lambda: get_template("spaced"))
    style: Style = DEFAULT_STYLE
    n_examples: int = Field(default=5, ge=1)
    seed: int = 1
    #: per-prompt test-split states per (task, spec): top-1 decodings and embeddings
    prompts: int = Field(default=100, ge=1)
    #: the first this many of them also go through the full-vocabulary phase curves
    lens_prompts: int = Field(default=25, ge=1)
    #: validation prompts averaged into each vector (None: all, as ``taskvec run`` does)
    extraction_prompts: int | None = Field(default=None, ge=1)
    #: layer of the vector decodings, similarity matrix and embeddings (None: the task-phase peak)
    layer: int | None = Field(default=None, ge=0)
    #: layers of the top-1 decodings (None: a quarter, half, the chosen layer and the last)
    decode_layers: list[int] | None = None
    top_k: int = Field(default=5, ge=1)
    #: a token-set file (``taskvec/analysis/data/token_sets.json`` layout); None: the shipped one
    token_sets: str | None = None
    embeddings: list[str] = Field(default_factory=lambda: ["tsne", "pca"])
    memory_budget_mb: MemoryBudgetMB = None

    @field_validator("template", mode="before")
    @classmethod
    def _template(cls, value):
        return get_template(value)

    @field_validator("specs")
    @classmethod
    def _specs(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = [s for s in value if s not in ANALYSIS_SPECS]
            if unknown or not value:
                raise ValueError(f"specs must be some of {list(ANALYSIS_SPECS)}, got {value}")
        return value

    @field_validator("embeddings")
    @classmethod
    def _embeddings(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in METHODS]
        if unknown:
            raise ValueError(f"embedding methods must be some of {list(METHODS)}, got {unknown}")
        if "umap" in value and not umap_available():  # before any forward pass, not after them
            raise ValueError(
                "umap needs the umap-learn package: pip install umap-learn, or choose pca / tsne"
            )
        return value


@dataclass
class AnalysisResult:
    """The folder and every table the analyses produced (the same data as its CSV files); a fresh
    analysis also carries what its summary is written from (``report.analysis``)."""

    folder: RunFolder
    layer: int
    layer_source: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    states: list[SpecStates] = field(default_factory=list)
    config: AnalysisConfig | None = None
    specs: list[str] = field(default_factory=list)
    #: the name of the model analysed
    model: str = ""
    #: every table, the layers and the embeddings' purity (None: read back, or not rank 0)
    analysis: AnalysisTables | None = None

    @property
    def summary_path(self) -> Path:
        """The folder's summary.md (``report.analysis.write_analysis_report`` writes it)."""
        return self.folder.path(SUMMARY_FILE)


def _text_only(model: str) -> ConfigError:
    return ConfigError(f"{model} is text-only; drop image-icl from the specifications")


def from_run_folder(run: str | Path, **overrides) -> tuple[AnalysisConfig, int | None]:
    """Options taken from a ``taskvec run`` folder (model, tasks, template, style, examples, first
    seed) and its ``best_layer``, if the run completed (its one layer, or under per-task selection
    its mean curve's best: ``run_layer_source`` names it); ``overrides`` win."""
    folder = RunFolder(run)
    kind = folder.kind()
    if kind == "reproduction":
        raise ConfigError(
            f"{folder.root} is a reproduction, not a run: its analyses are in {folder.root / 'analysis'}; "
            f"to analyse one of its runs, give --run {folder.root / 'conditions'}/<condition>"
        )
    if kind != "run":
        raise folder.not_a_run()
    recorded = folder.config()
    experiment = recorded["experiment"]
    options = {
        "model": experiment.get("model", DEFAULT_MODEL),
        "tasks": experiment.get("tasks", list(BUILTIN_TASKS)),
        "template": experiment.get("template", "paper"),
        "style": experiment.get("style") or DEFAULT_STYLE,  # null: the run drew no picture
        "n_examples": experiment.get("n_examples", 5),
        "seed": (experiment.get("seeds") or [1])[0],
    }
    # what the run chose its layer for
    ran = {k: options[k] for k in ("model", "template")} | {"tasks": list(options["tasks"])}
    options.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("tasks") is None:
        options["tasks"] = _run_task_files(folder, options["tasks"], recorded.get("tasks", {}))
    best = checked_results(folder)["chosen_layer"] if folder.is_complete() else None
    # the run chose its layer for its own model, tasks and template: of another model, of tasks it
    # did not run, or under another template (the delimiter token the vector is read at may
    # differ), it is no choice at all (the analysis then takes its own default and says so); fewer
    # examples per prompt, an analysis's usual economy, keep it
    of_run = _task_keys(ran["tasks"]) | _task_keys(
        entry.get("source") for entry in recorded.get("tasks", {}).values() if entry.get("source")
    )
    other_template = get_template(options["template"]) != get_template(ran["template"])
    if options["model"] != ran["model"] or not _task_keys(options["tasks"]) <= of_run or other_template:
        best = None
    return AnalysisConfig.create(**options), best


def _task_keys(tasks) -> set[str]:
    """Tasks as comparable keys: a built-in's name, a task file's absolute place."""
    return {
        canonical_task_name(t)
        if canonical_task_name(t) in BUILTIN_TASKS
        else str(Path(t).expanduser().resolve())
        for t in tasks
    }


def run_layer_source(run: str | Path) -> str:
    """What the layer ``from_run_folder`` took from ``run`` is, for the analysis to say: the run's
    one layer, or (per-task selection) its mean curve's best, with the layers the run read."""
    folder = RunFolder(run)
    results = checked_results(folder) if folder.is_complete() else {}
    if results.get("layer_selection", "shared") != "per-task":
        return LAYER_OF_RUN
    layers = ", ".join(f"{task} {layer}" for task, layer in results.get("chosen_layers", {}).items())
    return f"{LAYER_OF_RUN_MEAN}; the run read each task at its own layer: {layers}"


def _run_task_files(folder: RunFolder, typed: list[str], recorded: dict[str, dict]) -> list[str]:
    """A run's tasks where they are found from here: a task file at the absolute place the run
    recorded (the file it read, whatever folder it was typed relative to), else as typed, and
    one that is nowhere (moved) is refused with what to do."""
    sources = [entry.get("source") for entry in recorded.values()]
    if len(sources) != len(typed):  # a config.json that does not pair them: the typed ones alone
        sources = [None] * len(typed)
    found = []
    for reference, source in zip(typed, sources, strict=True):
        if canonical_task_name(reference) in BUILTIN_TASKS:
            found.append(reference)
        elif source and Path(source).is_file():  # the very file the run read
            found.append(source)
        elif Path(reference).expanduser().is_file():  # moved with the folder, typed relative
            found.append(reference)
        else:
            raise ConfigError(
                f"task file {reference} of the run {folder.root} is not there (moved?); give the "
                "run's tasks at their new place with --tasks"
            )
    return found


def _identity(config: AnalysisConfig, model_fingerprint: str, task_prints: list[str]) -> str:
    return digest(config.for_identity().model_dump_json(), model_fingerprint, *task_prints)


def finished_analysis(
    model_fingerprint: str,
    config: AnalysisConfig,
    out: str | Path,
    tables: dict[str, int | None],
    run_layer: int | None = None,
    run_layer_source: str = LAYER_OF_RUN,
) -> AnalysisResult | None:
    """A complete analysis folder of exactly ``config`` on the model of ``model_fingerprint``, made
    at the layer ``analyze`` would take now (``run_layer`` and its source as there), read back, or
    None: its ``tables`` (the CSV file's name -> its index column), not its states."""
    folder = RunFolder(out)
    prints = [load_task(name).fingerprint() for name in config.tasks]
    if not folder.is_complete_for(_identity(config, model_fingerprint, prints)):
        return None
    if not _made_at_layer_now(folder.status(), config, run_layer, run_layer_source):
        return None
    paths = {name: folder.path("tables", f"{name}.csv") for name in tables}
    # without its summary (stopped before its report was written) it is assembled again from its
    # pieces on disk, with no forward pass, so that the summary can be written
    if not all(path.is_file() for path in paths.values()) or not folder.path(SUMMARY_FILE).is_file():
        return None
    if not _tables_intact(folder):  # assembled again from its pieces, as above
        return None
    frames = {name: pd.read_csv(path, index_col=tables[name]) for name, path in paths.items()}
    status = folder.status()
    return AnalysisResult(
        folder, status["layer"], status["layer_source"], frames, config=config, model=config.model
    )


def _made_at_layer_now(status: dict, config: AnalysisConfig, run_layer: int | None, source: str) -> bool:
    """Whether a complete folder's layer is the one ``analyze`` would take now. A given layer is in
    the identity; the run's is not (an extended run may choose another, and its folder keeps the
    same identity), so the layer and its source (``source``, for the run's) recorded in the
    folder's status are compared."""
    if config.layer is not None:
        return True
    if run_layer is not None:
        return status.get("layer") == run_layer and status.get("layer_source") == source
    return status.get("layer_source") == LAYER_PEAK


@torch.no_grad()
def analyze(
    adapter: ModelAdapter,
    config: AnalysisConfig,
    out: str | Path,
    run_layer: int | None = None,
    run_layer_source: str = LAYER_OF_RUN,
    show_progress: bool = True,
    replace: bool = False,
    shared: SharedWork | None = None,
) -> AnalysisResult:
    """Run every analysis of ``config`` on ``adapter`` into the folder ``out``.

    The decoding / similarity / embedding layer is ``config.layer``, else ``run_layer`` (the layer
    a ``taskvec run`` chose, as ``run_layer_source`` says), else the layer where task tokens peak
    in the phase curves. With
    ``replace``, a folder holding another analysis is emptied rather than refused. ``shared``
    lends the vectors' delimiter states from protocol runs of the same prompts (a reproduction's).
    The folder's lock is held throughout: another command on it is refused, and ``taskvec runs``
    sees it running (a reproduction's analysis took none)."""
    with current_ranks().folder_lock(RunFolder(out)):
        return _analyze(
            adapter,
            config,
            out,
            run_layer,
            run_layer_source,
            show_progress=show_progress,
            replace=replace,
            shared=shared,
        )


def _analyze(
    adapter: ModelAdapter,
    config: AnalysisConfig,
    out: str | Path,
    run_layer: int | None,
    run_layer_source: str,
    show_progress: bool,
    replace: bool,
    shared: SharedWork | None,
) -> AnalysisResult:
    """``analyze``, the folder's lock held by the caller."""
    started = time.perf_counter()
    adapter = require_adapter(adapter, "analyze")
    # the model given names the analysis (or an alias of it does), or is refused
    config = sized_to(config.named_after(adapter.name, names_of(adapter.name)), adapter)
    specs = config.specs or default_specs(adapter)
    if "image-icl" in specs and not adapter.supports_images:
        raise _text_only(adapter.name)
    for layer in [config.layer, *(config.decode_layers or [])]:
        if layer is not None:
            adapter.check_layer(layer)
    tasks = _tasks_that_fit(config, specs)
    words = load_words(config.token_sets)
    folder = RunFolder(out)
    identity = _identity(config, adapter.fingerprint, [t.fingerprint() for t in tasks])
    ranks = current_ranks()
    show_progress = show_progress and ranks.is_main
    if ranks.is_main:
        folder.start(
            {"analysis": config.model_dump(mode="json"), "specs": specs, "model": adapter.describe()},
            identity,
            replace=replace,
        )
    ranks.barrier()  # the folder is open for every rank

    # the states of each (task, spec) are a unit of their own (``units/<task>__<spec>``): an
    # interrupted analysis keeps them, and under a launcher each rank computes those it claims
    pieces = [(t, s) for t in tasks for s in specs]
    pending = {
        _piece_key(t.name, s): (t, s) for t, s in pieces if not _has_piece(folder, t.name, s, identity)
    }
    sets_of: dict[str, TokenSets] = {}
    with progress_bar(show_progress) as progress:
        bar = progress.add_task("states", total=len(pieces), completed=len(pieces) - len(pending))
        # inside the piece: its prompts (the vector's, then the test split's), counted as they run
        inside = progress.add_task("  prompts", total=None, visible=bool(pending), unit="prompts")

        def on_progress(count: int, total: int) -> None:
            progress.update(inside, total=total, completed=count)

        claimed = False
        for key in ranks.each(folder.path("units"), list(pending)):
            claimed = True
            task, spec = pending[key]
            progress.update(bar, description=f"{task.name} {spec}")
            progress.reset(inside)
            if task.name not in sets_of:
                sets_of[task.name] = token_sets(adapter, task, config.template, words)
            got = collect(
                adapter,
                task,
                spec,
                config.template,
                style=config.style,
                n_examples=config.n_examples,
                seed=config.seed,
                prompts=config.prompts,
                extraction_prompts=config.extraction_prompts,
                memory_budget_mb=config.memory_budget_mb,
                shared=shared,
                on_progress=on_progress,
            )
            curve = phase_curve(phase_masses(adapter, got.states[: config.lens_prompts], sets_of[task.name]))
            # the vector first: a piece on disk always has its vector (a kill in between recomputes)
            got.vector.save(folder.path("vectors", f"{task.name}__{spec}"), overwrite=True)
            _save_piece(folder, task.name, spec, identity, got.states, curve)
            progress.advance(bar)
        if not claimed:
            progress.update(inside, visible=False)  # this rank claimed no piece: no prompts to show
        ranks.barrier()  # every piece is on disk: the launch's bar ends full, not at this rank's share
        progress.update(bar, completed=len(pieces))
    if not ranks.is_main:
        ranks.barrier()  # rank 0 assembles the tables; the other ranks read the status back
        status = folder.status()
        return AnalysisResult(folder, status["layer"], status["layer_source"])

    announce("decoding and comparing the vectors, then writing the tables ...", show_progress)
    # assembled from the pieces on disk, in one order, whoever computed them
    collected: list[SpecStates] = []
    sets_frames, curve_frames = [], []
    for task in tasks:
        sets_frames.append(token_sets(adapter, task, config.template, words).frame(adapter))
        for spec in specs:
            states, curve = _load_piece(folder, task.name, spec)
            vector = TaskVector.load(folder.path("vectors", f"{task.name}__{spec}"))
            collected.append(SpecStates(task.name, spec, vector, states))
            curve = curve.reset_index()
            curve.insert(0, "spec", spec)
            curve.insert(0, "task", task.name)
            curve_frames.append(curve)

    results = analysis_tables(
        adapter,
        collected,
        curve_frames,
        sets_frames,
        specs,
        [t.name for t in tasks],
        layer=config.layer,
        run_layer=run_layer,
        run_layer_source=run_layer_source,
        decode_layers=config.decode_layers,
        top_k=config.top_k,
        embeddings=config.embeddings,
        seed=config.seed,
    )
    _write_tables(folder, results)
    layer, source = results.layer, results.layer_source
    folder.finish(layer=layer, layer_source=source, seconds=round(time.perf_counter() - started, 1))
    ranks.barrier()  # the folder is complete for the other ranks
    return AnalysisResult(
        folder, layer, source, results.tables, collected, config, specs, adapter.name, analysis=results
    )


def _tasks_that_fit(config: AnalysisConfig, specs: Sequence[str]) -> list[Task]:
    """The tasks, each refused in one line where its val split cannot fill a prompt of
    ``n_examples`` demonstrations of a spec that has them (it failed deep in sampling)."""
    tasks = load_tasks(config.tasks)
    for task in tasks:
        if any(spec != "instruction" for spec in specs):
            check_demonstrations_fit(task, config.n_examples)
        if "text-icl" in specs:  # text demonstrations: one of an item's twin inputs gives its answer
            check_inputs_distinct(task)
        if "instruction" in specs:
            others = " ".join(f"--spec {spec}" for spec in specs if spec != "instruction")
            instead = f"; or analyse the other specifications alone ({others})" if others else ""
            check_instruction_ends_at_delimiter(task, config.template, instead)
    if config.token_sets is not None:  # the user's own file: an entry that names no task is a typo
        check_words_name_tasks(load_words(config.token_sets), tasks, config.token_sets)
    return tasks


def _piece_key(task: str, spec: str) -> str:
    return f"{task}__{spec}"


def _piece_path(folder: RunFolder, task: str, spec: str) -> Path:
    return folder.path("units", f"{_piece_key(task, spec)}.safetensors")


#: the metadata entry of a piece (its identity, task and spec, as JSON)
PIECE_KEY = "taskvec"


def _save_piece(
    folder: RunFolder, task: str, spec: str, identity: str, states: torch.Tensor, curve: pd.DataFrame
) -> None:
    """One (task, spec)'s per-prompt states and phase curve, stamped with the analysis identity."""
    tensors = {
        "states": states.detach().to("cpu").contiguous(),  # [prompts, layers, hidden]
        # [layers, 3]; one prompt's curve may come out of pandas transposed: packed before saving
        "curve": torch.tensor(curve[list(MASS.values())].to_numpy(), dtype=torch.float64).contiguous(),
        "curve_layers": torch.tensor(curve.index.to_numpy(), dtype=torch.int64),  # [layers]
    }
    # one metadata entry: safetensors writes several in an order that changes from process to
    # process, and equal analyses should give equal files
    record = {"identity": identity, "task": task, "spec": spec, "checksum": _tensors_checksum(tensors)}
    meta = {PIECE_KEY: json.dumps(record, sort_keys=True)}
    write_atomic(_piece_path(folder, task, spec), save_tensors(tensors, metadata=meta))


def _tensors_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """The checksum of a piece's tensors, by name: states edited in place (sign flipped, the
    metadata kept) were reused, and the phase ranges and embeddings followed them."""
    hasher = hashlib.sha256()
    for name in sorted(tensors):
        hasher.update(name.encode())
        hasher.update(tensors[name].contiguous().view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()[:16]


def _has_piece(folder: RunFolder, task: str, spec: str, identity: str) -> bool:
    """A piece counts only if it parses, was computed under ``identity`` and has its vector."""
    try:
        with safe_open(str(_piece_path(folder, task, spec)), "pt") as handle:
            meta = handle.metadata() or {}
        meta = json.loads(meta[PIECE_KEY]) if PIECE_KEY in meta else meta  # else as written before
    except (SafetensorError, OSError, json.JSONDecodeError):
        return False
    if (meta.get("identity"), meta.get("task"), meta.get("spec")) != (identity, task, spec):
        return False
    if "checksum" in meta:  # (an older taskvec's piece records none)
        try:
            tensors = load_tensors(_piece_path(folder, task, spec))
        except (SafetensorError, OSError):
            return False
        if _tensors_checksum(tensors) != meta["checksum"]:
            return False
    try:
        TaskVector.load(folder.path("vectors", f"{task}__{spec}"))
    except TaskvecError:
        return False
    return True


def _load_piece(folder: RunFolder, task: str, spec: str) -> tuple[torch.Tensor, pd.DataFrame]:
    """A piece's states and its phase curve, exactly as ``phase_curve`` made it."""
    tensors = load_tensors(_piece_path(folder, task, spec))
    index = pd.Index(tensors["curve_layers"].numpy(), name="layer")
    curve = pd.DataFrame(tensors["curve"].numpy(), index=index, columns=list(MASS.values()))
    return tensors["states"], curve


#: the checksum of each table an analysis wrote, beside them: a complete analysis read back
#: printed a decodings table edited by hand as its own
TABLE_CHECKSUMS = "checksums.json"


def _write_tables(folder: RunFolder, results: AnalysisTables) -> None:
    """Every table as CSV (``report.analysis`` writes the Markdown of those the summary shows),
    and their checksums."""
    checksums = {}
    for name, (frame, index) in result_tables(results).items():
        text = frame.to_csv(index=index)
        write_atomic(folder.path("tables", f"{name}.csv"), text)
        checksums[f"{name}.csv"] = text_checksum(text)
    write_json(folder.path("tables", TABLE_CHECKSUMS), checksums)


def _tables_intact(folder: RunFolder) -> bool:
    """Whether every table the analysis wrote is as it wrote it (an older taskvec's records no
    checksums: its tables are taken as they are)."""
    path = folder.path("tables", TABLE_CHECKSUMS)
    if not path.is_file():
        return True
    try:
        checksums = json.loads(path.read_text(encoding="utf-8"))
        return all(
            text_checksum(folder.path("tables", name).read_text(encoding="utf-8")) == checksum
            for name, checksum in checksums.items()
        )
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return False


def result_tables(results: AnalysisTables) -> dict[str, tuple[pd.DataFrame, bool]]:
    """The analysis's tables as its folder holds them: name -> (frame, whether its index is
    written)."""
    tables, layer = results.tables, results.layer
    plain = ("phase_curves", "top1", "decodings", "token_sets", "top1_distribution")
    files = {name: (tables[name], False) for name in plain}
    files |= {f"embedding_{method}": (frame, False) for method, frame in results.embeddings.items()}
    files |= {
        "phase_ranges": (tables["phase_ranges"].reset_index(), False),
        "phase_ranges_by_task": (tables["phase_ranges_by_task"].reset_index(), False),
        "decodings_table": (tables["decodings_table"], True),
        f"similarity_layer{layer}": (tables["similarity"].round(4), True),
        "similarity_by_layer": (tables["similarity_by_layer"].round(4), True),
    }
    return files


def default_analysis_dir(config: AnalysisConfig, root: Path = Path("runs")) -> Path:
    identity = digest(config.for_identity().model_dump_json(), length=10)
    return root / f"{config.model}-analysis-{config.template.name}-{identity}".replace("/", "_")


def run_analysis(
    run: str | Path | None = None,
    out: str | Path | None = None,
    adapter: ModelAdapter | None = None,
    load_options=None,
    **options,
) -> AnalysisResult:
    """What ``taskvec analyze`` does: options from ``run`` (a ``taskvec run`` folder) and/or
    ``options``, the model loaded by name, results into ``out`` (default ``<run>/analysis`` or
    ``runs/<model>-analysis-<template>-<hash>``); ``load_options`` (dtype, device) apply to the model
    loaded here."""
    options = {k: v for k, v in options.items() if v is not None}
    if run is not None:
        config, run_layer = from_run_folder(run, **options)
        source = run_layer_source(run)
    else:
        config, run_layer, source = AnalysisConfig.create(**options), None, LAYER_OF_RUN
    if adapter is not None:  # before a folder is named or made: a run of another model is refused
        config = config.named_after(adapter.name, names_of(adapter.name))
    if run is not None and config.layer is None and (why := unfinished(RunFolder(run))) is not None:
        # its layer is not chosen yet: the analysis took a layer of its own, unsaid
        raise ConfigError(f"{why}; or give the analysis its layer (--layer)")
    out = out or (Path(run) / "analysis" if run is not None else default_analysis_dir(config))
    ranks = current_ranks()
    ranks.check_folder(RunFolder(out))
    if adapter is None and "image-icl" in (config.specs or []) and not sees_images(config.model):
        raise _text_only(config.model)  # before the model loads
    _tasks_that_fit(config, config.specs or ANALYSIS_SPECS)  # the specs the model reads are not known yet
    if adapter is None:
        check_layers_before_loading(config.model, [config.layer, *(config.decode_layers or [])])
        # the same command again: a complete folder is read back, the model not loaded
        fingerprint = None if ranks.parallel else fingerprint_before_loading(config.model, load_options)
        finished = fingerprint and finished_analysis(
            fingerprint, config, out, READ_BACK_TABLES, run_layer, source
        )
        if finished:
            announce(f"{finished.folder.root} holds this analysis, complete: read back, nothing computed")
            return finished
    # one command per folder (rank 0's), taken before the model loads: the same command started
    # twice is refused before its model loads, not after
    with ranks.folder_lock(RunFolder(out)):
        adapter = adapter or load_model(config.model, load_options)
        return _analyze(
            adapter, config, out, run_layer, source, show_progress=True, replace=False, shared=None
        )
