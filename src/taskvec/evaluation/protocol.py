"""The paper's protocol for one (task, seed) unit, and layer selection across units.

Per unit: sample N demonstrations for every validation item from the rest of the validation split
and average the delimiter states of those prompts into the task vector (all layers at once);
sweep every layer on the bare validation queries; on the test split record No Context, the
majority label of the demonstrations, xBase (demonstrations + query in one prompt) and xPatch at
every layer. The layer is chosen afterwards from the validation curves alone
(``scoring.choose_layers``), so units are independent and a run can resume unit by unit: by
default (``layer_selection="shared"``, the paper's protocol) one layer for all tasks of the run,
the best of their mean validation curve, so a task's number depends on the tasks run beside it;
with ``"per-task"`` each task's own best layer.

``observing_steps`` tells a caller as each step of a unit (and the chosen layer's xPatch answers)
starts and ends, so a benchmark can time them without patching the functions they call.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from functools import cached_property
from typing import ClassVar, Literal, get_args

import torch
from pydantic import Field, field_validator

from taskvec.config import DEFAULT_MODEL, BatchedOptions, MemoryBudgetMB, Seeds, digest
from taskvec.errors import ConfigError, LayerError
from taskvec.evaluation.metrics import FIRST_TOKEN_METRICS, METRICS
from taskvec.evaluation.scoring import LayerSelection
from taskvec.models.adapter import ModelAdapter
from taskvec.models.batching import MemoryBudget, OnProgress, budget_of, progress_from
from taskvec.models.shared_work import SharedWork, compute_or_share, tensor_digest
from taskvec.patching.hooks import PatchMode
from taskvec.patching.patch import Patch, generate_ids, generate_ids_under_patches, line_complete
from taskvec.patching.shared_prefix import generate_ids_after_prefixes
from taskvec.patching.sweep import sweep
from taskvec.prompts.inputs import Modality, is_own_picture, item_input, sample_demos
from taskvec.prompts.template import (
    Prompt,
    PromptTemplate,
    get_template,
    instruction_prompt,
    majority_label,
)
from taskvec.tasks.images import DEFAULT_STYLE, Style
from taskvec.tasks.registry import BUILTIN_TASKS, TaskReferences
from taskvec.tasks.task import Item, Split, Task
from taskvec.vectors.extract import extract
from taskvec.vectors.provenance import icl_sources, instruction_source
from taskvec.vectors.task_vector import TaskVector

Spec = Literal["text-icl", "image-icl", "instruction", "ensemble"]
SPECS: tuple[str, ...] = get_args(Spec)
#: what ``run_unit``'s ``on_progress`` counts in each of its steps
STEP_COUNTS = {
    "task vector": "prompts",
    "layer sweep (val)": "rows (query x layer)",
    "layer sweep (test)": "rows (query x layer)",
    "xBase answers": "answers",
    "No Context answers": "answers",
}
#: where greedy answers stop (``line_complete``): an answer is one line, so generating past its
#: end changes no score; part of the answers' sharing key
ANSWERS_END = "end of line"

#: ``observer(moment, step)``: a protocol step (``run_unit``'s "task vector", "layer sweep (val)",
#: "layer sweep (test)", "xBase answers", "No Context answers"; ``patched_answers``'s "xPatch
#: answers") starts or ends
StepObserver = Callable[[Literal["start", "end"], str], None]
_STEP_OBSERVERS: list[StepObserver] = []


@contextmanager
def observing_steps(observer: StepObserver) -> Iterator[None]:
    """Within the block, ``observer("start" | "end", step)`` is told as each protocol step starts
    and ends, in this process. Why: a benchmark times the steps of a whole run (``bench/table.py``)
    through this instead of patching them; with no observer a step costs one list check."""
    _STEP_OBSERVERS.append(observer)
    try:
        yield
    finally:
        _STEP_OBSERVERS.remove(observer)


def _observed(step: str):
    """A block that tells the step observers (if any) that ``step`` starts, then ends."""
    return _telling(list(_STEP_OBSERVERS), step) if _STEP_OBSERVERS else nullcontext()


@contextmanager
def _telling(observers: list[StepObserver], step: str) -> Iterator[None]:
    for observer in observers:
        observer("start", step)
    try:
        yield
    finally:
        for observer in observers:
            observer("end", step)


class ExperimentConfig(BatchedOptions):
    """Everything that determines a run's numbers; its hash names the run and keys its caches."""

    kind: ClassVar[str] = "run options"

    model: str = DEFAULT_MODEL
    tasks: TaskReferences = Field(default_factory=lambda: list(BUILTIN_TASKS))
    spec: Spec = "text-icl"
    query: Modality = "text"
    #: the image-suite style pictures are drawn in; a run records and hashes it only where it
    #: draws one (``as_run``), so it is None in the config of a run that draws no picture
    style: Style | None = DEFAULT_STYLE
    template: PromptTemplate = Field(default_factory=lambda: get_template("paper"))
    n_examples: int = Field(default=5, ge=1)
    seeds: Seeds = Field(default_factory=lambda: [1, 2, 3])
    layers: list[int] | None = None
    selection_metric: Literal["paper", "paper_ci", "strict"] = "paper"
    #: ``shared``: one layer for every task of the run, the best of their mean validation curve
    #: (the paper's protocol); ``per-task``: each task's best layer on its own validation curve
    layer_selection: LayerSelection = "shared"
    patch_mode: PatchMode = "replace"
    patch_scale: float = 1.0
    answer_tokens: int = Field(default=6, ge=1)
    #: test-split xPatch at ``all`` layers (per-layer test curves; the units do not depend on the
    #: layer choice) or only at the layer ``chosen`` on validation (what the paper reports; the
    #: test sweep is about a fifth of a run's work)
    test_layers: Literal["all", "chosen"] = "all"
    memory_budget_mb: MemoryBudgetMB = None

    @field_validator("template", mode="before")
    @classmethod
    def _template(cls, value):
        return get_template(value)

    @field_validator("layers")
    @classmethod
    def _layers(cls, value: list[int] | None) -> list[int] | None:
        if value is not None:
            if not value:
                raise ValueError("layers, when given, must not be empty")
            if any(layer < 0 for layer in value):
                raise LayerError(f"layers must be >= 0 (count from the first decoder layer), got {value}")
            value = sorted(set(value))
        return value

    @property
    def demo_modality(self) -> Modality:
        return "image" if self.spec == "image-icl" else "text"

    @property
    def needs_images(self) -> bool:
        return self.query == "image" or self.spec == "image-icl"

    @property
    def picture_splits(self) -> tuple[Split, ...]:
        """The splits whose pictures a run shows: image ICL shows the val split's (demonstrations
        and extraction queries), image queries both splits'; none for text-only runs."""
        if self.query == "image":
            return ("val", "test")
        return ("val",) if self.spec == "image-icl" else ()

    def shown_style(self, task: Task) -> str | None:
        """The style ``task``'s pictures are drawn in this run: ``style`` where the run shows one
        of its image-suite pictures, None where it shows none (text examples and queries) or only
        the task's own image files, which no style changes."""
        drawn = any(not is_own_picture(item) for split in self.picture_splits for item in task.split(split))
        return self.style if drawn else None

    def as_run(self, tasks: Sequence[Task]) -> ExperimentConfig:
        """These options as a run of ``tasks`` records and hashes them: ``style`` None unless
        a picture is drawn in it (``shown_style``), so a ``--style`` that changes nothing changes
        neither the run's identity nor its folder."""
        drawn = any(self.shown_style(task) for task in tasks)
        return self.model_copy(update={"style": self.style if drawn else None})

    def config_hash(self) -> str:
        return digest(json.dumps(self.for_identity().model_dump(mode="json"), sort_keys=True), length=10)

    def budget(self, adapter: ModelAdapter) -> MemoryBudget:
        """The memory budget batches are planned by: the one given, else ``adapter``'s own
        (pipelines fix it once per run: ``sized_to``)."""
        return budget_of(adapter, self.memory_budget_mb)


def unit_rng(task: Task, seed: int) -> random.Random:
    """Demonstration sampling depends on (task, seed) only, not on run order."""
    return random.Random(f"{task.name}/{seed}")


def check_task_fits(task: Task, config: ExperimentConfig) -> None:
    """Each validation query needs N other validation items as demonstrations; an instruction
    whose vector is read (spec ``instruction``, and ``ensemble``, half of which it is) ends at the
    template's delimiter."""
    if config.spec != "instruction":
        check_demonstrations_fit(task, config.n_examples)
        if not (config.spec == "image-icl" and config.query == "image"):
            check_inputs_distinct(task)
    if config.spec in ("instruction", "ensemble"):
        check_instruction_ends_at_delimiter(task, config.template)


def check_inputs_distinct(task: Task) -> None:
    """Two items of one input text (a task file lets them differ by picture) are one item where
    the examples or the queries are that text: a demonstration would give the query its own
    answer (image examples on image queries show the pictures, which differ)."""
    seen: dict[str, tuple[str, str]] = {}
    for split in ("val", "test"):
        for item in task.split(split):
            key = item.input.strip().casefold()
            if key in seen:
                first, where = seen[key]
                raise ConfigError(
                    f"task {task.name!r}: items {first!r} ({where}) and {item.id!r} ({split}) have the same "
                    f"input {item.input!r} (their pictures differ); with text examples or queries one "
                    "would be shown as the other's demonstration: give them distinct inputs, or run image "
                    "examples on image queries"
                )
            seen[key] = (item.id, split)


def check_instruction_ends_at_delimiter(
    task: Task, template: PromptTemplate | str, instead: str = ""
) -> None:
    """The instruction vector is read at the instruction's last token, and an ICL vector at the
    delimiter (the ":" of "A:"): an instruction that stops elsewhere gives the state of another
    token (its last word), which no ICL vector is compared with, silently. ``instead``: what the
    command could do without the instruction's vector, said after the fix."""
    delimiter = get_template(template).delimiter
    if not task.instruction.endswith(delimiter):
        copy = f" (a built-in task: load_task({task.name!r}).save(path) writes a copy to edit)"
        raise ConfigError(
            f"task {task.name!r}: its instruction {task.instruction[-40:]!r} does not end in the "
            f"template's delimiter {delimiter!r}, where task vectors are read; end it with "
            f"{delimiter!r}{copy if task.name in BUILTIN_TASKS else ''}{instead}"
        )


def check_demonstrations_fit(task: Task, n_examples: int) -> None:
    """A prompt of ``n_examples`` demonstrations drawn from the val split, beside a query of it."""
    if len(task.val) < n_examples + 1:
        raise ConfigError(
            f"task {task.name!r}: its val split has {len(task.val)} items, too few for "
            f"{n_examples} demonstrations plus a query; lower --n-examples"
        )


class UnitPrompts:
    """The prompts of one unit, from the task, config and seed; each kind is built when first
    asked for (a reproduction asks some units for their xBase prompts only)."""

    def __init__(self, task: Task, config: ExperimentConfig, seed: int):
        self.task, self.config, self.seed = task, config, seed
        rng = unit_rng(task, seed)
        if config.spec == "instruction" and len(task.val) < config.n_examples + 1:
            # an instruction unit shows no demonstration; it records the ones an ICL unit of this
            # seed draws where the split has them, and none where it is too small to (it failed)
            self.val_demos, self.test_demos = [[] for _ in task.val], [[] for _ in task.test]
            return
        self.val_demos = [sample_demos(task.val, config.n_examples, rng, exclude=q) for q in task.val]
        self.test_demos = [sample_demos(task.val, config.n_examples, rng) for _ in task.test]

    @cached_property
    def extraction(self) -> list[Prompt]:
        demo_in = self.config.demo_modality
        return [
            self.config.template.icl(self._demos(demos, demo_in), self._input(q, demo_in))
            for q, demos in zip(self.task.val, self.val_demos, strict=True)
        ]

    @cached_property
    def instruction(self) -> Prompt:
        return instruction_prompt(self.task.instruction)

    @cached_property
    def val_queries(self) -> list[Prompt]:
        return [self.config.template.query(self._input(q, self.config.query)) for q in self.task.val]

    @cached_property
    def test_queries(self) -> list[Prompt]:
        return [self.config.template.query(self._input(q, self.config.query)) for q in self.task.test]

    @cached_property
    def test_examples(self) -> list[Prompt]:
        """What each xBase prompt holds before its query: its demonstrations, or in instruction
        runs the instruction (the same for every query)."""
        if self.config.spec == "instruction":
            return [self.config.template.instruction_lead(self.task.instruction) for _ in self.task.test]
        demo_in = self.config.demo_modality
        return [self.config.template.examples(self._demos(demos, demo_in)) for demos in self.test_demos]

    @cached_property
    def test_base(self) -> list[Prompt]:
        """xBase: the demonstrations (or the instruction) and the query in one prompt."""
        template, query = self.config.template, self.config.query
        if self.config.spec == "instruction":
            return [template.instructed(self.task.instruction, self._input(q, query)) for q in self.task.test]
        demo_in = self.config.demo_modality
        return [
            template.icl(self._demos(demos, demo_in), self._input(q, query))
            for q, demos in zip(self.task.test, self.test_demos, strict=True)
        ]

    def _demos(self, demos: list[Item], modality: Modality) -> list[tuple]:
        return [(self._input(d, modality), d.label) for d in demos]

    def _input(self, item: Item, modality: Modality):
        return item_input(item, modality, self.config.style)


def task_vector_for(
    adapter: ModelAdapter,
    prompts: UnitPrompts,
    shared: SharedWork | None = None,
    on_progress: OnProgress | None = None,
    limit: int | None = None,
) -> TaskVector:
    """The unit's task vector for its specification (all layers); ``on_progress(done, total)``
    is told the prompts run (the ICL prompts, then the instruction). ``limit``: average only the
    first this many ICL prompts (an analysis's cap; the protocol takes them all)."""
    config, task = prompts.config, prompts.task
    common = dict(task=task.name, seed=prompts.seed, template=config.template.name)
    common.update(budget=config.budget(adapter), shared=shared)
    total = _extraction_prompts(prompts, limit)
    icl = total - (config.spec in ("instruction", "ensemble"))  # the instruction comes last
    exemplar = None
    if config.spec != "instruction":
        chosen = prompts.extraction[:limit]  # each validation query with its demonstrations
        exemplar = extract(
            adapter,
            chosen,
            spec=config.spec if config.spec != "ensemble" else "text-icl",
            modality=config.demo_modality,
            n_examples=config.n_examples,
            sources=icl_sources(
                task, task.val[:limit], prompts.val_demos[:limit], chosen, config.demo_modality, config.style
            ),
            on_progress=progress_from(on_progress, 0, total),
            **common,
        )
    if config.spec in ("text-icl", "image-icl"):
        return exemplar
    instruction = extract(
        adapter,
        [prompts.instruction],
        spec="instruction",
        modality="text",
        sources=[instruction_source(task.instruction, prompts.instruction)],
        on_progress=progress_from(on_progress, icl, total),
        **common,
    )
    if config.spec == "instruction":
        return instruction
    return TaskVector.mean([instruction, exemplar], spec="ensemble")


def _extraction_prompts(prompts: UnitPrompts, limit: int | None = None) -> int:
    """How many prompts ``task_vector_for`` runs: the ICL prompts and/or the instruction."""
    spec = prompts.config.spec
    icl = len(prompts.task.val[:limit]) if spec != "instruction" else 0  # one per val item
    return icl + (1 if spec in ("instruction", "ensemble") else 0)


def _swept(
    adapter: ModelAdapter,
    queries: Sequence[Prompt],
    vectors: torch.Tensor,
    layers: list[int],
    config: ExperimentConfig,
    shared: SharedWork | None,
    on_progress: OnProgress | None = None,
):
    """The layer sweep, or its result from a run that swept the same queries with the same
    vectors (LLM -> VLM transfer on a frozen language model)."""
    budget, mode, scale = config.budget(adapter), config.patch_mode, config.patch_scale
    options = (tensor_digest(vectors), tuple(layers), budget, mode, scale)
    return compute_or_share(
        shared,
        "sweep",
        adapter,
        queries,
        options,
        lambda: sweep(adapter, queries, vectors, layers, budget, mode, scale, on_progress),
    )


def _answers(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    config: ExperimentConfig,
    shared: SharedWork | None,
    leads: Sequence[Prompt] | None = None,
    on_progress: OnProgress | None = None,
) -> list[list[int]]:
    """Greedy answers (one line, at most ``config.answer_tokens``), or those of a run that asked
    the same. With ``leads`` (what each prompt begins with), a lead the prompts have in common
    runs once for all of them (``generate_ids_after_prefixes``), with the whole prompts' answers."""

    def compute() -> list[list[int]]:
        budget, until = config.budget(adapter), line_complete(adapter)
        if leads is None:
            return generate_ids(adapter, prompts, None, config.answer_tokens, budget, until, on_progress)
        groups = [[prompt] for prompt in prompts]
        per_item = generate_ids_after_prefixes(
            adapter, leads, groups, config.answer_tokens, budget, until, on_progress
        )
        return [answers for (answers,) in per_item]

    options = answer_options(adapter, None, config)
    # a reproduction may provide these answers with other runs' (``SharedWork.provide``): that
    # computation, if it runs now, counts on ``on_progress`` too
    return compute_or_share(shared, "greedy answers", adapter, prompts, options, compute, on_progress)


def answer_options(adapter: ModelAdapter, patch: Patch | None, config: ExperimentConfig) -> tuple:
    """What greedy answers depend on beyond the model and prompts (their ``SharedWork`` options)."""
    return (_patch_key(patch), config.answer_tokens, ANSWERS_END, config.budget(adapter))


def _patch_key(patch: Patch | None) -> tuple | None:
    return None if patch is None else (patch.layer, tensor_digest(patch.vector), patch.mode, patch.scale)


def run_unit(
    adapter: ModelAdapter,
    task: Task,
    seed: int,
    config: ExperimentConfig,
    vector_adapter: ModelAdapter | None = None,
    shared: SharedWork | None = None,
    on_step: Callable[[int, int, str], None] | None = None,
    on_progress: OnProgress | None = None,
) -> tuple[dict, TaskVector]:
    """Compute one (task, seed) unit: its vector and every prediction the report needs.

    ``vector_adapter`` extracts the vector in another model of the same width (LLM -> VLM
    transfer); by default the vector comes from ``adapter`` itself. ``shared`` lends the vector
    and the No Context answers from another run that had the very same prompts. ``on_step(done,
    total, name)`` is told before each of the unit's steps (a unit takes minutes on a CPU), and
    ``on_progress(done, total)`` how far the current step is, in the unit ``STEP_COUNTS`` names
    (told as it starts and after each batch; a step whose result is shared tells its start only)."""
    steps = ["task vector", "layer sweep (val)"]
    steps += ["layer sweep (test)"] if config.test_layers == "all" else []
    steps += ["xBase answers", "No Context answers"]

    def step(name: str, total: int):
        """Tell ``on_step`` that step ``name`` starts and ``on_progress`` how much it has to do
        (``STEP_COUNTS`` says in what); the block it returns is the step."""
        if on_step is not None:
            on_step(steps.index(name), len(steps), name)
        if on_progress is not None:
            on_progress(0, total)
        return _observed(name)

    if shared is not None:
        shared.starting_unit(task, seed, config)
    prompts = UnitPrompts(task, config, seed)
    layers = config.layers if config.layers is not None else list(range(adapter.num_layers))
    source = vector_adapter or adapter
    with step("task vector", _extraction_prompts(prompts)):
        vector = task_vector_for(source, prompts, shared, on_progress)
    vectors = vector.vectors[layers]  # [layers, hidden]
    with step("layer sweep (val)", len(task.val) * len(layers)):
        val = _swept(adapter, prompts.val_queries, vectors, layers, config, shared, on_progress)
    test = None
    if config.test_layers == "all":
        with step("layer sweep (test)", len(task.test) * len(layers)):
            test = _swept(adapter, prompts.test_queries, vectors, layers, config, shared, on_progress)
    # an instruction run's xBase prompts all begin with the instruction; ICL prompts each with
    # examples of their own, which would gain nothing from running apart from their query
    leads = prompts.test_examples if config.spec == "instruction" else None
    with step("xBase answers", len(task.test)):
        base_answers = _answers(adapter, prompts.test_base, config, shared, leads, on_progress)
    with step("No Context answers", len(task.test)):
        clean_answers = _answers(adapter, prompts.test_queries, config, shared, on_progress=on_progress)

    def describe(item: Item) -> dict:
        return {
            "id": item.id,
            "input": item.input,
            "label": item.label,
            "answers": list(item.answers),
            "label_first_tokens": sorted({t for a in item.answers for t in adapter.first_tokens_of(a)}),
        }

    val_rows = [
        {
            **describe(item),
            "no_context": adapter.decode([int(val.clean[i])]),
            "xpatch": adapter.decode_each(val.patched[i].tolist()),
        }
        for i, item in enumerate(task.val)
    ]
    test_rows = []
    for i, item in enumerate(task.test):
        demos = prompts.test_demos[i]
        test_rows.append(
            {
                **describe(item),
                "demos": [d.id for d in demos],
                "majority": majority_label([d.label for d in demos]) if config.spec != "instruction" else "",
                "no_context": adapter.decode(
                    [int(test.clean[i])] if test is not None else clean_answers[i][:1]
                ),
                "no_context_answer": adapter.decode(clean_answers[i]),
                "xbase": adapter.decode(base_answers[i][:1]),
                "xbase_answer": adapter.decode(base_answers[i]),
                "xpatch": adapter.decode_each(test.patched[i].tolist()) if test is not None else [],
            }
        )
    unit = {
        "task": task.name,
        "seed": seed,
        "layers": layers,
        "test_layers": layers if test is not None else [],
        "val": val_rows,
        "test": test_rows,
        "labels_over_budget": labels_over_budget(adapter, task, config),
    }
    return unit, vector


def labels_over_budget(adapter: ModelAdapter, task: Task, config: ExperimentConfig) -> list[str]:
    """The labels of ``task`` the model could not write whole within the answer budget (after the
    template's answer prefix): a baseline answering one of them is held to the budget the model's
    answers are cut at, so whole_label and exact cannot credit it either (they credited it, and a
    model cut short trailed the baselines by a difference that was only the budget's)."""
    labels = dict.fromkeys(item.label for item in (*task.val, *task.test))
    prefix = config.template.answer_prefix
    return [label for label in labels if len(adapter.text_token_ids(prefix + label)) > config.answer_tokens]


def patched_answers(
    adapter: ModelAdapter,
    task: Task,
    config: ExperimentConfig,
    vectors: Mapping[int, TaskVector],
    layer: int,
    shared: SharedWork | None = None,
    on_progress: OnProgress | None = None,
) -> dict[int, list[tuple[str, str]]]:
    """xPatch on the test split at the chosen layer with each seed's vector (``vectors[seed]``):
    per seed, each answer's first token and its whole greedy answer (for the exact metric). The
    seeds patch the same queries, so each query's tokens before the patched one run once.
    ``on_progress(done, total)`` is told the answers (item x seed) given after each batch."""
    prompts = [config.template.query(item_input(q, config.query, config.style)) for q in task.test]
    seeds = list(vectors)
    patches = [Patch(layer, vectors[s].at(layer), config.patch_mode, config.patch_scale) for s in seeds]
    budget = config.budget(adapter)
    options = (tuple(_patch_key(p) for p in patches), config.answer_tokens, ANSWERS_END, budget)
    with _observed("xPatch answers"):
        ids = compute_or_share(
            shared,
            "patched answers",
            adapter,
            prompts,
            options,
            lambda: generate_ids_under_patches(
                adapter,
                prompts,
                patches,
                config.answer_tokens,
                budget,
                line_complete(adapter),
                on_progress,
            ),
        )
    return {
        seed: [(adapter.decode(x[:1]), adapter.decode(x)) for x in answers]
        for seed, answers in zip(seeds, ids, strict=True)
    }


__all__ = [
    "ExperimentConfig",
    "answer_options",
    "FIRST_TOKEN_METRICS",
    "METRICS",
    "SPECS",
    "STEP_COUNTS",
    "StepObserver",
    "UnitPrompts",
    "check_instruction_ends_at_delimiter",
    "check_inputs_distinct",
    "check_task_fits",
    "observing_steps",
    "patched_answers",
    "run_unit",
    "task_vector_for",
]
