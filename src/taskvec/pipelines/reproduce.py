"""``taskvec reproduce``: every experiment of the paper on one model, into one report folder.

1. the specification x query matrix, each image condition in a training style and the held-out
   style (Tables 3 and 10);
2. LLM -> VLM transfer: vectors from the base LLM patched into the VLM, and their similarity
   (Table 4);
3. instructions and ensembling (Fig. 8);
4. task conflict (Fig. 9);
5. the analyses (similarity heatmap, vector decodings, phases);

whose results ``report.reproduce.write_report`` turns into ``report.md`` / ``report.html`` with
our numbers beside the paper's. Each stage writes its own files, stamped with what they were
computed from (the reproduction and the chosen layer), and is skipped when they match, so an
interrupted reproduction resumes, and one rerun with more seeds in the same folder computes only
the new protocol units and the stages that depend on them.
An optional ``StageObserver`` is told as each stage and each condition run starts and ends (how
``bench/arithmetic.py`` splits a reproduction's time and arithmetic by stage).
"""

from __future__ import annotations

import functools
import io
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import pandas as pd
import torch
from pydantic import Field, PrivateAttr, field_validator

from taskvec.analysis.similarity import same_task_cosines
from taskvec.config import DEFAULT_VLM, BatchedOptions, MemoryBudgetMB, Seeds, digest
from taskvec.errors import ConfigError, TaskvecError
from taskvec.evaluation.protocol import (
    ExperimentConfig,
    UnitPrompts,
    answer_options,
    check_instruction_ends_at_delimiter,
)
from taskvec.evaluation.scoring import LayerSelection
from taskvec.experiments.conditions import Condition, paper_conditions
from taskvec.experiments.conflict import FIT_COLUMNS, PAIRS, conflict_answers, conflict_rows
from taskvec.experiments.ensemble import check_ensemble_counts, ensemble_answers, ensemble_scores
from taskvec.models.adapter import ModelAdapter, given_model
from taskvec.models.batching import OnProgress, progress_from, sized_to
from taskvec.models.registry import (
    NAMED_MODELS,
    LoadOptions,
    fingerprint_before_loading,
    load_model,
    names_of,
    sees_images,
)
from taskvec.models.shared_work import SharedWork
from taskvec.patching.patch import line_complete
from taskvec.patching.shared_prefix import generate_ids_after_prefixes
from taskvec.pipelines.analyze import AnalysisConfig, AnalysisResult, analyze, finished_analysis
from taskvec.pipelines.evaluate import (
    RunResult,
    check_images,
    check_vectors_fit,
    evaluate,
    finished_run,
    recorded_tasks,
)
from taskvec.pipelines.progress import announce, progress_bar
from taskvec.pipelines.ranks import current as current_ranks
from taskvec.prompts.template import TEMPLATES
from taskvec.storage.run_folder import RunFolder, text_checksum, write_atomic
from taskvec.tasks.images import DEFAULT_STYLE, HELD_OUT_STYLE, Style
from taskvec.tasks.registry import BUILTIN_TASKS, TaskReferences, load_task, load_tasks
from taskvec.tasks.task import Task
from taskvec.vectors.task_vector import TaskVector

#: table4_similarity's column of the mean cosine with other tasks' vectors (empty for one task)
BASELINE_COSINE = "different tasks (baseline)"


#: what ``quick`` shrinks besides the seeds (to one): Fig. 8's counts and Fig. 9's items
#: the tables the Fig. 8 and Fig. 9 stages write (and read back), and the columns each must have
ENSEMBLE_TABLE, CONFLICT_TABLE = "ensemble_scores.csv", "conflict_outputs.csv"
STAGE_COLUMNS: dict[str, tuple[str, ...]] = {ENSEMBLE_TABLE: ("correct",), CONFLICT_TABLE: tuple(FIT_COLUMNS)}
QUICK_SIZES = {"ensemble_counts": [5, 10], "conflict_items": 4}


class ReproduceConfig(BatchedOptions):
    """What a reproduction runs; ``quick`` shrinks it to a smoke run of a few minutes."""

    kind: ClassVar[str] = "reproduce options"

    model: str = DEFAULT_VLM
    #: the base LLM for LLM -> VLM transfer (None: the model's own ``base_llm``, if it has one)
    llm: str | None = None
    #: the prompt template (None: the named model's own, ``NamedModel.template``, else the paper's)
    template: str | None = None
    #: image styles: a training style, then the held-out one
    styles: list[Style] = Field(default_factory=lambda: [DEFAULT_STYLE, HELD_OUT_STYLE], min_length=1)
    tasks: TaskReferences = Field(default_factory=lambda: list(BUILTIN_TASKS), min_length=1)
    seeds: Seeds = Field(default_factory=lambda: [1, 2, 3])
    ensemble_counts: list[int] = Field(default_factory=lambda: [5, 10, 15, 20, 25, 30])
    conflict_items: int = Field(default=20, ge=1)
    answer_tokens: int = Field(default=4, ge=1)
    #: each condition's layer: ``shared`` by the six tasks (the paper's protocol) or ``per-task``
    layer_selection: LayerSelection = "shared"
    memory_budget_mb: MemoryBudgetMB = None
    quick: bool = False
    #: whether the options named the template (else it follows the model, also one given in memory)
    _template_given: bool = PrivateAttr(default=False)

    @field_validator("styles")
    @classmethod
    def _each_style_once(cls, value: list[str]) -> list[str]:
        """``--style noto noto`` ran and reported every style section twice."""
        if len(set(value)) != len(value):
            raise ValueError(f"a style is named twice ({', '.join(value)}); name each once")
        return value

    @field_validator("template")
    @classmethod
    def _a_known_template(cls, value: str | None) -> str | None:
        """A typo refused here, before the folder is made (it was made, and then blocked the
        corrected command as "another run")."""
        if value is not None and value not in TEMPLATES:
            raise ValueError(f"unknown template {value!r}; reproduce takes one of {sorted(TEMPLATES)}")
        return value

    @classmethod
    def create(cls, **options) -> ReproduceConfig:
        config = super().create(**options)
        config._template_given = config.template is not None
        if config.template is None:
            config = config.model_copy(update={"template": _model_template(config.model)})
        if config.quick and len(options.get("seeds") or []) > 1:  # kept the first, silently
            raise ConfigError(
                f"--quick runs one seed, and {len(options['seeds'])} were given: give one --seed, "
                "or leave out --quick"
            )
        shrunk = [name for name in QUICK_SIZES if options.get(name) is not None]
        if config.quick and shrunk:  # replaced by the quick sizes, silently
            sizes = ", ".join(f"{name}={QUICK_SIZES[name]}" for name in shrunk)
            raise ConfigError(f"quick sets {sizes} itself: leave them out, or leave out quick")
        if config.quick:
            config = config.model_copy(update={"seeds": config.seeds[:1], **QUICK_SIZES})
        return config

    def named_after(self, model: str, names=()) -> ReproduceConfig:
        """``BatchedOptions.named_after``; a template not named in the options follows the model
        given (the paper's for a model of one's own, not the default model's)."""
        renamed = super().named_after(model, names)
        if renamed.model == self.model or self._template_given:
            return renamed
        return renamed.model_copy(update={"template": _model_template(renamed.model)})


def _model_template(model: str) -> str:
    """The paper's template, unless the named model's tokens want another (``NamedModel.template``)."""
    named = NAMED_MODELS.get(model)
    return named.template if named else "paper"


#: the folder of a quick reproduction that holds its cut task files
QUICK_TASKS = "quick-tasks"
#: items per split in ``--quick`` runs (the full protocol uses every item)
QUICK_ITEMS = {"val": 6, "test": 6}


def quick_task_files(tasks: list[str], folder: Path, write: bool = True) -> list[str]:
    """Copies of the tasks cut to ``QUICK_ITEMS``, for the smoke run (their fingerprints differ,
    so their results never mix with full runs). ``write=False``: only their paths (the other
    ranks of a launch read the files rank 0 wrote)."""
    paths = []
    for name in tasks:
        if not write:
            paths.append(str(folder / f"{load_task(name).name}.json"))
            continue
        task = load_task(name)
        records = {
            "name": task.name,
            "instruction": task.instruction,
            "domain": task.domain,
            **{
                split: [
                    {
                        "id": i.id,
                        "input": i.input,
                        "output": i.label,
                        "aliases": list(i.aliases),
                        "entity": i.entity,
                    }
                    for i in task.split(split)[: QUICK_ITEMS[split]]
                ]
                for split in ("val", "test")
            },
        }
        path = folder / f"{task.name}.json"
        write_atomic(path, json.dumps(records, ensure_ascii=False, indent=1))
        paths.append(str(path))
    return paths


def _refuse_moved_quick(root: Path) -> None:
    """A quick reproduction's runs name its cut task files by their place in its folder, so one
    moved or copied elsewhere would meet its own runs as "another run" when resumed: said for
    what it is, before loading (a complete one is read back before this, where its first place
    still holds the task files)."""
    for config_path in sorted((root / "conditions").glob("*/config.json")):
        try:
            tasks = json.loads(config_path.read_text(encoding="utf-8"))["experiment"]["tasks"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a run's config: the run itself says what is wrong with it
        cut = [Path(task) for task in tasks if Path(task).parent.name == QUICK_TASKS]
        moved = sorted({str(task.parent.parent.resolve()) for task in cut} - {str(root.resolve())})
        if moved:
            raise ConfigError(
                f"{root} is a quick reproduction made in {moved[0]} and moved or copied since; its "
                "runs name their task files there, so it cannot resume here: move it back, or run "
                "it again into a new folder"
            )


#: ``observer(moment, stage, run)``: a stage of a reproduction ("matrix", "transfer", "ensemble",
#: "conflict", "analysis"; ``run`` None) or one run of a stage (``run``: its folder's name) starts
#: or ends. Why: a benchmark splits a reproduction's cost by stage without patching its methods.
StageObserver = Callable[[Literal["start", "end"], str, str | None], None]


@contextmanager
def _observed(observer: StageObserver | None, stage: str, run: str | None = None) -> Iterator[None]:
    """The block is ``stage`` (or its ``run``) for ``observer``: told as it starts and ends."""
    if observer is None:
        yield
        return
    observer("start", stage, run)
    try:
        yield
    finally:
        observer("end", stage, run)


def _stage(name: str):
    """A ``Reproduction`` method that is the stage ``name`` for its observer."""

    def stage(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            with _observed(self.observer, name):
                return method(self, *args, **kwargs)

        return run

    return stage


def run_conditions(
    adapter: ModelAdapter,
    conditions: Sequence[Condition],
    root: Path,
    show_progress: bool = True,
    shared: SharedWork | None = None,
    observer: StageObserver | None = None,
    **options,
) -> dict[Condition, RunResult]:
    """One :func:`evaluate` run per condition under ``root/<condition>``; finished runs resume.
    With ``shared``, conditions with the same extraction prompts or queries compute them once;
    ``observer`` is told as each run starts and ends (the stage "matrix")."""
    results = {}
    for condition in conditions:
        config = condition.config(model=adapter.name, **options)
        out = root / condition.name
        announce(f"  {condition.name} ({out})", show_progress and current_ranks().is_main)
        with _observed(observer, "matrix", condition.name):
            results[condition] = evaluate(config, out, adapter, show_progress, shared=shared)
    return results


class Reproduction:
    """The state of one reproduction: its folder, model, options, and the stages' results."""

    def __init__(
        self,
        adapter: ModelAdapter,
        config: ReproduceConfig,
        root: Path,
        show_progress: bool = True,
        observer: StageObserver | None = None,
    ):
        self.adapter, self.config, self.root = adapter, config, Path(root)
        self.show_progress = show_progress
        self.observer = observer
        self.folder = RunFolder(root)
        self.task_names = list(config.tasks)
        self.tasks: list[Task] = load_tasks(self.task_names)
        self.conditions: dict[Condition, RunResult] = {}
        self.transfer: dict[str, RunResult] = {}
        #: LLM -> VLM transfer ran with the very LLM the VLM's language model is, unchanged, so the
        #: LLM's text-ICL vectors are the VLM's by construction (set by ``run_transfer``)
        self.transfer_by_construction = False
        #: the LLM's text-ICL vectors came out equal to the VLM's, value for value, though the
        #: VLM is not known to be built on it (a VLM trained with its language model frozen, or
        #: ``--llm`` naming that very model): as much by construction (set by ``run_transfer``)
        self.transfer_vectors_equal = False
        self.shared = SharedWork()  # delimiter states and No Context answers runs have in common
        self.identity = _identity(config, adapter.fingerprint, self.tasks)

    def _stage_stamp(self) -> str:
        """What the ensembling and conflict stages depend on beyond their own options: this
        reproduction and the layer the main condition chose."""
        result = self.main_condition()
        layers = ",".join(str(result.layer_for(t.name)) for t in self.tasks)
        per_task = f"/{layers}" if result.layer_selection == "per-task" else ""
        return f"{self.identity}/layer{result.best_layer}{per_task}"

    def _cached_table(self, path: Path) -> pd.DataFrame | None:
        """A stage's table, if it was written for this very reproduction and layer, is as it was
        written (its stamp records its checksum: an edited table's scores became the claims), and
        has the columns today's stage writes (``STAGE_COLUMNS``: one an older taskvec wrote
        without them is computed again). An older taskvec's stamp records no checksum."""
        stamp = path.with_suffix(".stamp")
        if not (path.is_file() and stamp.is_file()):
            return None
        text, stage = path.read_text(encoding="utf-8"), self._stage_stamp()
        if stamp.read_text() not in (stage, _stamped(stage, text)):
            return None
        table = pd.read_csv(io.StringIO(text))
        return table if set(STAGE_COLUMNS[path.name]) <= set(table.columns) else None

    def _write_table(self, path: Path, frame: pd.DataFrame) -> None:
        path.with_suffix(".stamp").unlink(missing_ok=True)  # a kill between the writes recomputes
        text = frame.to_csv(index=False)
        write_atomic(path, text)
        write_atomic(path.with_suffix(".stamp"), _stamped(self._stage_stamp(), text))

    def start(self) -> None:
        """Open (or resume) the folder; a quick run then writes its cut-down task files (rank 0 of
        a launch does both; the others wait for it)."""
        ranks = current_ranks()
        if ranks.is_main:
            self.folder.start(
                {
                    "reproduce": self.config.model_dump(mode="json"),
                    "model": self.adapter.describe(),
                    "tasks": recorded_tasks(self.tasks),
                },
                self.identity,
                # more seeds, or another layer selection, extend a reproduction (each condition
                # reuses its units: they depend on neither)
                lineage=_identity(
                    self.config, self.adapter.fingerprint, self.tasks, exclude={"seeds", "layer_selection"}
                ),
            )
            if self.config.quick:
                self.task_names = quick_task_files(self.task_names, self.root / QUICK_TASKS)
        ranks.barrier()  # the folder and the quick task files are there for every rank
        if self.config.quick:
            if not ranks.is_main:
                self.task_names = quick_task_files(self.task_names, self.root / QUICK_TASKS, write=False)
            self.tasks = load_tasks(self.task_names)

    # --- options shared by every protocol run ---------------------------------------------------
    def run_options(self) -> dict:
        layers = None
        if self.config.quick:
            last = self.adapter.num_layers - 1
            layers = sorted({*range(0, last, 4), last})
        return {
            "tasks": self.task_names,
            "template": self.config.template,
            "seeds": self.config.seeds,
            "layers": layers,
            "answer_tokens": self.config.answer_tokens,
            "layer_selection": self.config.layer_selection,
            "memory_budget_mb": self.config.memory_budget_mb,
            # the report reads the test split at the chosen layer only (as the paper does)
            "test_layers": "chosen",
        }

    @property
    def training_style(self) -> str:
        return self.config.styles[0]

    def main_condition(self, style: str | None = None) -> RunResult:
        """Text ICL -> image queries: the paper's headline condition."""
        return self.conditions[Condition("text-icl", "image", style or self.training_style)]

    # --- stages ---------------------------------------------------------------------------------
    @_stage("matrix")
    def run_matrix(self) -> None:
        conditions = paper_conditions(self.config.styles)
        self.share_demonstrations(conditions)
        self.conditions = run_conditions(
            self.adapter,
            conditions,
            self.root / "conditions",
            self.show_progress,
            self.shared,
            self.observer,
            **self.run_options(),
        )

    def share_demonstrations(self, conditions: list[Condition]) -> None:
        """Conditions with the same examples (text ICL -> text and -> image in each style; image
        ICL of a style -> image and -> text) or the same instruction (instruction -> text and ->
        image in each style) ask xBase prompts that differ only in their query. As the first of
        them starts a unit, the unit's examples (or instruction) are run once for all of them and
        every query on top (``generate_ids_after_prefixes``); the others are handed their answers."""
        if not self.adapter.continues_cached_prefix:
            return
        groups: dict[tuple, list[ExperimentConfig]] = {}
        for condition in conditions:
            same_lead = (condition.spec, condition.style if condition.spec == "image-icl" else None)
            config = condition.config(model=self.adapter.name, **self.run_options())
            groups.setdefault(same_lead, []).append(config)
        group_of = {c.config_hash(): g for g in groups.values() if len(g) > 1 for c in g}
        provided: set[tuple] = set()

        def hook(task: Task, seed: int, config: ExperimentConfig) -> None:
            group = group_of.get(config.config_hash())
            if group is None or (task.name, seed, id(group)) in provided:
                return
            provided.add((task.name, seed, id(group)))
            units = [UnitPrompts(task, member, seed) for member in group]
            options = [answer_options(self.adapter, None, unit.config) for unit in units]
            keys = [
                SharedWork.key("greedy answers", self.adapter, unit.test_base, answering)
                for unit, answering in zip(units, options, strict=True)
            ]
            self.shared.provide(keys, lambda told: _answers_sharing_examples(self.adapter, units, told))

        self.shared.unit_hooks.append(hook)

    @_stage("transfer")
    def run_transfer(self, llm: ModelAdapter) -> None:
        """Text-ICL vectors extracted in ``llm``, patched into the VLM's image queries."""
        self.transfer_by_construction = transfer_is_by_construction(self.adapter, llm)
        for style in self.config.styles:
            condition = Condition("text-icl", "image", style)
            config = condition.config(model=self.adapter.name, **self.run_options())
            out = self.root / "transfer" / f"llm-{condition.name}"
            said = self.show_progress and current_ranks().is_main
            announce(f"  {out.name}: {llm.name}'s vectors ({out})", said)
            with _observed(self.observer, "transfer", out.name):
                self.transfer[style] = evaluate(
                    config, out, self.adapter, self.show_progress, vector_adapter=llm, shared=self.shared
                )
        self.transfer_vectors_equal = not self.transfer_by_construction and self._llm_vectors_are_the_vlms()

    def _llm_vectors_are_the_vlms(self) -> bool:
        """Whether every text-ICL vector the LLM gave equals the VLM's of the same task and seed
        (every layer, to float32 rounding): then its language model computes text as the LLM does,
        and LLM -> VLM transfer is the VLM's own."""
        style = self.training_style
        own = self.conditions[Condition("text-icl", "image", style)].folder
        for task in self.tasks:
            for seed in self.config.seeds:
                theirs = TaskVector.load(self.transfer[style].folder.vector_path(task.name, "text-icl", seed))
                ours = TaskVector.load(own.vector_path(task.name, "text-icl", seed))
                if theirs.vectors.shape != ours.vectors.shape or not torch.allclose(
                    theirs.vectors, ours.vectors, rtol=1e-5, atol=1e-6
                ):
                    return False
        return True

    def transfer_similarity(self) -> pd.DataFrame:
        """Cosine similarity, at the VLM's chosen layer (each task's, where tasks chose their own),
        of the LLM's text-ICL vector with the VLM's text-ICL and image-ICL vectors of the same task,
        against other tasks' (the baseline)."""
        style = self.training_style
        rows = []
        for other, condition in (
            ("VLM text ICL", Condition("text-icl", "image", style)),
            ("VLM image ICL", Condition("image-icl", "image", style)),
        ):
            layer, same, different = self.llm_cosines(condition)
            rows.append(
                {
                    "pair": f"LLM text ICL vs {other}",
                    "layer": layer,
                    "same task": same,
                    BASELINE_COSINE: different,
                }
            )
        return pd.DataFrame(rows).set_index("pair").round(4)

    def llm_cosines(self, condition: Condition) -> tuple[int | str, float, float]:
        """The layer the main condition of ``condition``'s style chose, and there the mean cosine of
        the LLM's text-ICL vectors (transfer in that style) with ``condition``'s vectors of the same
        task and of different tasks (``same_task_cosines``, over the reproduction's seeds). Where
        each task chose its own layer (``--layer-selection per-task``), each task's pairs are read
        at its layer, where its vectors were patched, and the layer is named per task."""
        style = condition.style or self.training_style
        main = self.main_condition(style)
        names = [t.name for t in self.tasks]
        by_layer: dict[int, list[str]] = {}
        for name in names:
            by_layer.setdefault(main.layer_for(name), []).append(name)
        means = [
            same_task_cosines(
                self._vectors_at(self.transfer[style], "text-icl", layer),
                self._vectors_at(self.conditions[condition], condition.spec, layer),
                names,
                self.config.seeds,
                rows=rows,
            )
            for layer, rows in by_layer.items()
        ]
        if len(by_layer) == 1:
            return next(iter(by_layer)), *means[0]
        # each task has as many pairs as every other: the mean of all pairs weighs each task's by one
        sizes = [len(rows) for rows in by_layer.values()]
        same, different = (
            sum(m[i] * n for m, n in zip(means, sizes, strict=True)) / len(names) for i in (0, 1)
        )
        return ", ".join(f"{name} {main.layer_for(name)}" for name in names), same, different

    def _vectors_at(self, result: RunResult, spec: str, layer: int) -> dict[tuple[str, int], torch.Tensor]:
        """A run's ``spec`` vectors at ``layer``, by (task, seed): ``[hidden]`` each."""
        return {
            (task.name, seed): TaskVector.load(result.folder.vector_path(task.name, spec, seed)).at(layer)
            for task in self.tasks
            for seed in self.config.seeds
        }

    @_stage("ensemble")
    def run_ensemble(self) -> pd.DataFrame:
        path = self.root / "tables" / ENSEMBLE_TABLE
        if (cached := self._cached_table(path)) is not None:
            return cached
        frames = []
        seeds, counts = self.config.seeds, self.config.ensemble_counts
        each = [ensemble_answers(task, seeds, counts) for task in self.tasks]
        with self._stage_bar("ensembling (Fig. 8)", len(self.config.styles) * sum(each)) as told:
            for style in self.config.styles:
                result = self.main_condition(style)
                config = Condition("text-icl", "image", style).config(
                    model=self.adapter.name, **self.run_options()
                )
                for task, answers in zip(self.tasks, each, strict=True):
                    scores = ensemble_scores(
                        self.adapter,
                        task,
                        config,
                        seeds,
                        result.layer_for(task.name),
                        counts,
                        shared=self.shared,
                        on_progress=told(f"ensembling: {task.name} ({style})", answers),
                    )
                    frames.append(scores.assign(style=style, layer=result.layer_for(task.name)))
        scores = pd.concat(frames, ignore_index=True)
        self._write_table(path, scores)
        return scores

    @_stage("conflict")
    def run_conflict(self) -> pd.DataFrame | None:
        path = self.root / "tables" / CONFLICT_TABLE
        if (cached := self._cached_table(path)) is not None:
            return cached
        result = self.main_condition()
        seed = self.config.seeds[0]
        config = Condition("text-icl", "image", self.training_style).config(
            model=self.adapter.name, **self.run_options()
        )
        by_name = {t.name: t for t in self.tasks}
        directions = [
            (by_name[prompted], by_name[patched])
            for first, second in PAIRS
            if first in by_name and second in by_name
            for prompted, patched in ((first, second), (second, first))
        ]
        if not directions:  # none of the conflicting pairs is among the chosen tasks
            return None
        limit = self.config.conflict_items
        each = [conflict_answers(prompted, patched, limit) for prompted, patched in directions]
        frames = []
        with self._stage_bar("task conflict (Fig. 9)", sum(each)) as told:
            for (prompted, patched), answers in zip(directions, each, strict=True):
                layer = result.layer_for(patched.name)  # where the patched task's vector is read
                saved = TaskVector.load(result.folder.vector_path(patched.name, "text-icl", seed))
                vector = saved.at(layer)
                description = f"conflict: {prompted.name} <- {patched.name}"  # the vector patched in
                frames.append(
                    conflict_rows(
                        self.adapter,
                        prompted,
                        patched,
                        vector,
                        layer,
                        config,
                        limit,
                        on_progress=told(description, answers),
                    ).assign(layer=layer)
                )
        rows = pd.concat(frames, ignore_index=True)
        self._write_table(path, rows)
        return rows

    @contextmanager
    def _stage_bar(self, name: str, total: int) -> Iterator[Callable[[str, int], OnProgress]]:
        """A bar of ``total`` answers for a stage that is not split into units (rank 0 alone runs
        it, and alone shows it). The block is handed ``told(description, part)``: the
        ``on_progress`` of its next part (``part`` answers), which the bar names ``description``."""
        show = self.show_progress and current_ranks().is_main
        with progress_bar(show) as progress:
            bar = progress.add_task(name, total=total, unit="answers")
            before = 0  # answers of the parts before this one

            def told(description: str, part: int) -> OnProgress:
                nonlocal before
                start, before = before, before + part
                progress.update(bar, description=description, completed=start)
                return progress_from(lambda done, _: progress.update(bar, completed=done), start, total)

            yield told
            progress.update(bar, completed=total)

    @_stage("analysis")
    def run_analysis(self) -> AnalysisResult:
        config = _analysis_config(
            self.config, self.adapter.name, self.task_names, self.main_condition().best_layer
        )
        out = self.root / "analysis"
        return finished_analysis(self.adapter.fingerprint, config, out, _ANALYSIS_TABLES) or analyze(
            self.adapter, config, out, show_progress=self.show_progress, replace=True, shared=self.shared
        )


#: the analysis tables the report needs (a folder of another analysis, at another layer, is redone)
_ANALYSIS_TABLES = {"decodings_table": 0, "phase_ranges": None}


def _analysis_config(config: ReproduceConfig, model: str, tasks: list[str], layer: int) -> AnalysisConfig:
    """The analyses of a reproduction: its training style and first seed, at the layer its main
    condition chose (``model``: the name its runs record; ``tasks``: as its runs read them)."""
    return AnalysisConfig.create(
        model=model,
        tasks=tasks,
        template=config.template,
        style=config.styles[0],
        seed=config.seeds[0],
        prompts=10 if config.quick else 50,
        lens_prompts=4 if config.quick else 20,
        layer=layer,
        embeddings=["pca"] if config.quick else ["tsne", "pca"],
        memory_budget_mb=config.memory_budget_mb,
    )


def transfer_is_by_construction(adapter: ModelAdapter, llm: ModelAdapter) -> bool:
    """Whether ``llm`` is the language model of ``adapter`` unchanged (its base, frozen, the same
    weights): then LLM -> VLM transfer patches the VLM's own text-ICL vectors and proves nothing.
    Another LLM (``--llm``) or a tuned language model is a real test."""
    base = adapter.base_language_model()
    if base is None or not base.frozen or base.adapter is None:
        return False
    known = bool(base.adapter.weights_fingerprint)  # models built in memory may have none
    return llm is base.adapter or (known and llm.fingerprint == base.adapter.fingerprint)


def base_llm(
    adapter: ModelAdapter, config: ReproduceConfig, load_options: LoadOptions | None = None
) -> ModelAdapter | None:
    """The LLM the VLM was built on (None when unknown: Table 4 is skipped). A VLM that holds its
    base LLM's own adapter (the embedded VLM) lends it; any other is loaded on its own."""
    base = adapter.base_language_model()
    if config.llm is None and base is not None and base.adapter is not None:
        return base.adapter
    name = base_llm_name(adapter, config)
    return load_model(name, load_options) if name else None


def base_llm_name(adapter: ModelAdapter, config: ReproduceConfig) -> str | None:
    """The name the LLM of Table 4 loads by (``--llm``, else the VLM's base LLM), or None."""
    base = adapter.base_language_model()
    return config.llm or (base.name if base is not None else None)


@dataclass
class ReproductionResult:
    """What a finished reproduction gives its report: each stage's results (None where a stage
    did not run: Table 4 without a base LLM; ensembling and conflict on ranks other than 0)."""

    reproduction: Reproduction
    ensemble: pd.DataFrame | None
    conflict: pd.DataFrame | None
    similarity: pd.DataFrame | None
    analysis: AnalysisResult
    llm: ModelAdapter | None
    #: seconds per stage
    timings: dict[str, float]


@torch.no_grad()
def reproduce(
    config: ReproduceConfig,
    out: str | Path | None = None,
    adapter: ModelAdapter | None = None,
    show_progress: bool = True,
    load_options: LoadOptions | None = None,
    observer: StageObserver | None = None,
) -> ReproductionResult:
    """Run every experiment into the reproduction's folder and return their results
    (``report.reproduce.write_report`` writes the report from them). ``load_options`` (dtype,
    device map) apply to the models loaded here (the VLM, its LLM); ``observer`` is told as each
    stage and each of its runs starts and ends."""
    started = time.perf_counter()
    adapter = given_model(adapter, "reproduce")
    if adapter is not None:
        config = config.named_after(adapter.name, names_of(adapter.name))
    root = reproduction_root(config, out)
    ranks = current_ranks()
    ranks.check_folder(RunFolder(root))
    if config.quick:
        _refuse_moved_quick(Path(root))
    if not (adapter.supports_images if adapter is not None else sees_images(config.model)):
        raise ConfigError(f"{config.model} is text-only; `taskvec reproduce` needs a vision-language model")
    tasks = load_tasks(config.tasks)
    for task in tasks:  # its Instruction conditions and Fig. 8 read instruction vectors
        check_instruction_ends_at_delimiter(task, config.template)
        check_ensemble_counts(
            task, ExperimentConfig.model_fields["n_examples"].default, config.ensemble_counts
        )
    for style in config.styles:  # every condition but the first shows pictures: each task needs them
        check_images(tasks, style)
    # one command per folder (its stages' folders lock too), taken before the models load: the
    # same command started twice is refused before its models load, not after. Under a launcher,
    # rank 0 holds the locks, every rank computes the units it claims in each stage, and rank 0
    # alone runs the stages that are not split into units (ensembling, conflict)
    with ranks.folder_lock(RunFolder(root)):
        return _reproduce(config, root, adapter, show_progress, load_options, observer, started)


def _reproduce(
    config: ReproduceConfig,
    root: Path,
    adapter: ModelAdapter | None,
    show_progress: bool,
    load_options: LoadOptions | None,
    observer: StageObserver | None,
    started: float,
) -> ReproductionResult:
    """``reproduce`` under the folder's lock: the models loaded, every stage run."""
    ranks = current_ranks()
    said = show_progress and ranks.is_main  # the stages' lines, once a launch
    if adapter is None:
        announce(f"loading {config.model} ...", said)
        adapter = load_model(config.model, load_options)
    # the LLM of Table 4 before any stage: one that does not fit failed after the whole matrix
    llm = base_llm(adapter, config, load_options)
    if llm is not None:
        check_vectors_fit(llm, adapter)
    config = sized_to(config, adapter)  # measured with both models in place; every run plans by it
    reproduction = Reproduction(adapter, config, root, show_progress, observer)
    finished_before = _finished_launches(reproduction.folder)
    reproduction.start()
    # resumed after a launch stopped part-way: what that launch computed is reused here, and
    # the time it spent is nowhere (it finished nothing), so the report says its times are short
    stopped_before = bool(reproduction.folder.status().get("resumed")) and not finished_before.count
    timings: dict[str, float] = {}

    def timed(name: str, step):
        announce(f"{name} ...", said)  # the bars name a task and a spec, not the stage they are of
        begun = time.perf_counter()
        value = step()
        timings[name] = round(time.perf_counter() - begun, 1)
        return value

    timed("matrix (Tables 3, 10)", reproduction.run_matrix)
    similarity = ensemble = conflict = None
    if llm is not None:
        timed("LLM -> VLM (Table 4)", lambda: reproduction.run_transfer(llm))
        similarity = reproduction.transfer_similarity() if ranks.is_main else None
    if ranks.is_main:
        ensemble = timed("ensembling (Fig. 8)", reproduction.run_ensemble)
        conflict = timed("task conflict (Fig. 9)", reproduction.run_conflict)
    analysis = timed("analyses", reproduction.run_analysis)
    seconds = round(time.perf_counter() - started, 1)
    launches, seconds, timings = finished_before.add(seconds, timings)
    if ranks.is_main:
        # the LLM by the name it loads by: a reproduction run again is read back before loading
        llm_name = base_llm_name(adapter, config) if llm is not None else None
        reproduction.folder.finish(
            seconds=seconds,
            timings=timings,
            launches=launches,
            llm=llm_name,
            after_a_stopped_launch=stopped_before,
        )
    ranks.barrier()  # every stage's files are in place
    return ReproductionResult(reproduction, ensemble, conflict, similarity, analysis, llm, timings)


def reproduction_root(config: ReproduceConfig, out: str | Path | None = None) -> Path:
    """A reproduction's folder: ``out``, else ``runs/reproduce-<model>`` (``-quick`` for a quick one),
    one folder inside ``runs/`` whatever the model's name (a path ``../../models/vlm`` wrote outside
    it, and a hub id ``org/name`` nested one; ``taskvec runs`` found neither)."""
    if out:
        return Path(out)
    name = f"reproduce-{config.model}{'-quick' if config.quick else ''}"
    root = Path("runs") / name.replace("/", "_")
    earlier = Path("runs") / name  # where a taskvec before 2026-12-07 put it: found, not redone
    if earlier != root and (earlier / "config.json").is_file() and not root.exists():
        return earlier
    return root


#: the report in a reproduction's folder, written (``report.reproduce.write_report``) after it finished
REPORT_FILE = "report.md"


def finished_reproduction(
    config: ReproduceConfig, out: str | Path | None = None, load_options: LoadOptions | None = None
) -> Path | None:
    """The report of a complete reproduction of this very config, VLM, LLM and data in its
    folder, found before any model loads, or None. The same command run again after the report
    was written (a script resumed after a crash) then costs seconds, not loading a 7B VLM and
    its LLM to read every stage back. The weights' fingerprints are read from their files
    (``fingerprint_before_loading``); every run of the reproduction must read back as ``taskvec
    run`` reads a complete folder back (units and vectors intact, under these weights, task data
    and pictures), and its analysis too. Anything less: None, and ``reproduce`` loads the models
    and resumes what is missing."""
    root = reproduction_root(config, out)
    folder, report = RunFolder(root), root / REPORT_FILE
    status = folder.status()
    if not folder.is_complete() or "llm" not in status or not report.is_file():
        return None  # unfinished, or finished by a taskvec that did not record its LLM
    if report.stat().st_mtime_ns < folder.status_path.stat().st_mtime_ns:
        return None  # stopped after finishing, before its report was written
    fingerprint = fingerprint_before_loading(config.model, load_options)
    if fingerprint is None:
        return None
    if not folder.is_complete_for(_identity(config, fingerprint, load_tasks(config.tasks))):
        return None
    runs = [(root / "conditions" / c.name, fingerprint) for c in paper_conditions(config.styles)]
    if status["llm"] is not None:
        llm_fingerprint = fingerprint_before_loading(status["llm"], load_options)
        if llm_fingerprint is None:
            return None
        transfer = f"{fingerprint}<-{llm_fingerprint}"  # vectors from the LLM, patched into the VLM
        for style in config.styles:
            runs.append((root / "transfer" / f"llm-{Condition('text-icl', 'image', style).name}", transfer))
    results = [_finished_run_in(run, run_fingerprint) for run, run_fingerprint in runs]
    if any(result is None for result in results):
        return None
    main = results[_main_index(config)]
    analysis = _analysis_config(config, main.config.model, list(main.config.tasks), main.best_layer)
    if finished_analysis(fingerprint, analysis, root / "analysis", _ANALYSIS_TABLES) is None:
        return None
    return report if _stage_tables_current(root) else None


def _stamped(stage: str, table: str) -> str:
    """A stage table's stamp: what the stage depends on, and the checksum of the table's text."""
    return f"{stage}\n{text_checksum(table)}"


def _stage_tables_current(root: Path) -> bool:
    """Whether every stage table in ``root/tables`` has the columns today's stage writes: a
    report over an older taskvec's Fig. 8 table (no item-by-item scores) was read back as this
    reproduction's, its claims the old ones."""
    for name, columns in STAGE_COLUMNS.items():
        path = root / "tables" / name
        if not path.is_file():
            continue
        try:
            header = pd.read_csv(path, nrows=0).columns
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError):
            return False  # damaged (emptied, cut): the stage runs again on resume
        if not set(columns) <= set(header):
            return False
    return True


def _main_index(config: ReproduceConfig) -> int:
    """Where the main condition (text ICL -> image queries, training style) is among the runs."""
    return paper_conditions(config.styles).index(Condition("text-icl", "image", config.styles[0]))


def _finished_run_in(out: Path, fingerprint: str) -> RunResult | None:
    """The run in ``out``, complete under the options it records and the model of
    ``fingerprint``, read back; None where it is missing, unreadable or anything less."""
    folder = RunFolder(out)
    if not folder.is_complete():
        return None
    try:
        config = ExperimentConfig.create(**folder.config()["experiment"])
    except (TaskvecError, KeyError, TypeError):
        return None
    return finished_run(config, out, fingerprint)


@dataclass(frozen=True)
class _Launches:
    """The wall time of the launches that finished a reproduction folder before this one."""

    count: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def add(self, seconds: float, timings: dict[str, float]) -> tuple[int, float, dict[str, float]]:
        """Launches, seconds and per-stage times with this launch's added: a finished
        reproduction run again reads its stages back in a moment, and its report keeps the time
        the stages took to compute instead of that moment's."""
        summed = {stage: round(self.timings.get(stage, 0.0) + spent, 1) for stage, spent in timings.items()}
        return self.count + 1, round(self.seconds + seconds, 1), summed


def _finished_launches(folder: RunFolder) -> _Launches:
    """What the launches that finished ``folder`` took (read before this launch marks it running;
    a launch stopped half-way recorded no times, so only finished ones count)."""
    status = folder.status()
    if not folder.is_complete() or not isinstance(status.get("timings"), dict):
        return _Launches()
    return _Launches(status.get("launches", 1), status.get("seconds", 0.0), status["timings"])


def _answers_sharing_examples(
    adapter: ModelAdapter, units: list[UnitPrompts], on_progress: OnProgress | None = None
) -> list[list[list[int]]]:
    """xBase answers of units whose prompts begin with the same examples or instruction:
    ``[unit][item]``; ``on_progress(done, total)`` is told the answers (item x unit) given."""
    config = units[0].config
    per_item = generate_ids_after_prefixes(
        adapter,
        units[0].test_examples,
        [list(prompts) for prompts in zip(*(u.test_base for u in units), strict=True)],
        config.answer_tokens,
        config.budget(adapter),
        line_complete(adapter),
        on_progress,
    )
    return [[answers[j] for answers in per_item] for j in range(len(units))]


def _identity(
    config: ReproduceConfig, model_fingerprint: str, tasks: list[Task], exclude: set[str] | None = None
) -> str:
    prints = [t.fingerprint() for t in tasks]
    return digest(config.for_identity().model_dump_json(exclude=exclude), model_fingerprint, *prints)
