"""``evaluate``: validate everything, run the units (resuming finished ones), select the layer,
score the test split and write the run's results (``report.tables`` writes what a reader reads
from them). Under a launcher the ranks share the units and rank 0 writes the rest
(``pipelines.ranks``)."""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from contextlib import ExitStack, nullcontext
from pathlib import Path

import torch

from taskvec.config import DEFAULT_VLM, digest
from taskvec.errors import (
    ConfigError,
    ImageError,
    MemoryBudgetError,
    ResultWarning,
    StorageError,
    TaskFileError,
    TaskvecError,
    VectorMismatchError,
    recorded_warnings,
)
from taskvec.evaluation.protocol import (
    STEP_COUNTS,
    ExperimentConfig,
    UnitPrompts,
    check_task_fits,
    patched_answers,
    run_unit,
)
from taskvec.evaluation.result import RunResult
from taskvec.evaluation.scoring import (
    choose_layer,
    choose_layers,
    layer_curve,
    layer_scores,
    split_predictions,
)
from taskvec.models.adapter import ModelAdapter, given_model
from taskvec.models.batching import progress_from, sized_to, token_counts
from taskvec.models.registry import (
    LoadOptions,
    check_layers_before_loading,
    fingerprint_before_loading,
    load_model,
    names_of,
    sees_images,
)
from taskvec.models.shared_work import SharedWork
from taskvec.pipelines.progress import announce, progress_bar
from taskvec.pipelines.ranks import current as current_ranks
from taskvec.pipelines.results import (
    PREDICTIONS_FILE,
    RESULTS_FILE,
    WARNINGS,
    derived_files,
    prediction_rows,
    recorded_answers_check,
    with_run_columns,
    write_predictions,
    write_results,
)
from taskvec.storage.run_folder import RunFolder, check_writable, seal_holds, write_atomic, write_json
from taskvec.tasks.registry import load_tasks
from taskvec.tasks.task import Task
from taskvec.vectors.provenance import pictures_shown
from taskvec.vectors.task_vector import TaskVector


def validate_inputs(config: ExperimentConfig) -> list[Task]:
    """Everything that can be checked without the model: options, tasks, split sizes, images."""
    return _validate(config)[0]


def _validate(config: ExperimentConfig) -> tuple[list[Task], dict[str, str]]:
    """``validate_inputs``, also returning each task's image hash (``""`` for text-only runs)."""
    check_options(config)
    tasks = load_tasks(config.tasks)
    for task in tasks:
        check_task_fits(task, config)
    images = check_images(tasks, config.style) if config.needs_images else {t.name: "" for t in tasks}
    return tasks, images


def check_options(config: ExperimentConfig) -> None:
    """Options that are each valid but contradict one another."""
    default_examples = ExperimentConfig.model_fields["n_examples"].default
    if config.spec == "instruction" and config.n_examples != default_examples:
        raise ConfigError(
            f"n_examples {config.n_examples} has no effect with spec 'instruction' (an instruction "
            "has no demonstrations); drop --n-examples"
        )
    if config.patch_mode == "replace" and config.patch_scale != 1.0:
        raise ConfigError(
            f"patch_scale {config.patch_scale} has no effect with patch_mode 'replace' (the vector "
            "replaces the state); use patch_mode 'add' or drop patch_scale"
        )
    if config.needs_images:
        from taskvec.tasks.images import STYLES

        if config.style is not None and config.style not in STYLES:  # None: a task's own files
            raise ConfigError(f"style: unknown image style {config.style!r}; known styles: {list(STYLES)}")


def check_images(tasks: list[Task], style: str) -> dict[str, str]:
    """Every item's image must exist (in ``style`` for suite images) and decode fully.

    Returns a hash of each task's image bytes: pictures are task data, so they go into the run
    and unit identities."""
    from taskvec.prompts.inputs import image_file, is_own_picture, open_image

    hashes = {}
    for task in tasks:
        hasher = hashlib.sha256()
        own: dict[str, str] = {}  # an own picture's SHA-256 -> the first item showing it
        for item in (*task.val, *task.test):
            try:
                path = image_file(item, style)
            except ImageError as error:
                raise ImageError(f"task {task.name!r}: {error}") from None
            open_image(path, what=f"task {task.name!r}: item {item.id!r}")
            sha = hashlib.sha256(path.read_bytes()).hexdigest()
            if is_own_picture(item) and own.setdefault(sha, item.id) != item.id:
                # as the same input twice: a query's picture could be shown as a demonstration
                # with its answer (under two names, a copy, a link: the bytes tell)
                raise ImageError(
                    f"task {task.name!r}: items {own[sha]!r} and {item.id!r} show the same picture "
                    f"({path.name}); drop one (a query could be shown as its own demonstration)"
                )
            hasher.update(f"{item.id}:{sha};".encode())
        hashes[task.name] = hasher.hexdigest()[:12]
    return hashes


def _images_hash(images: dict[str, str]) -> str:
    """One hash of every task's images (``""`` when no task has images)."""
    if not any(images.values()):
        return ""
    return digest(";".join(f"{name}:{images[name]}" for name in sorted(images)))


def check_model_fits(adapter: ModelAdapter, config: ExperimentConfig) -> None:
    for layer in config.layers or []:
        adapter.check_layer(layer)
    if config.needs_images and not adapter.supports_images:
        raise _text_only(adapter.name, config)


def check_pictures_processable(adapter: ModelAdapter, tasks: list[Task], config: ExperimentConfig) -> None:
    """A model's processor may refuse a picture the file check let through (Qwen2-VL: an aspect
    ratio over 200; Fuyu: a strip a few pixels high): each own picture goes through it once, as
    a bare query, once the model is loaded and before the first forward pass, so that a run does
    not stop half-way on one with the processor's traceback."""
    from taskvec.prompts.inputs import is_own_picture, open_image

    if not config.needs_images:
        return
    seen: set[str] = set()
    for task in tasks:
        for item in (*task.val, *task.test):
            if not is_own_picture(item) or item.entity in seen:
                continue
            seen.add(item.entity)
            path = Path(item.entity)
            try:
                adapter.encode([config.template.query(open_image(path))])
            except (ValueError, RuntimeError) as error:
                raise ImageError(
                    f"task {task.name!r}: item {item.id!r}: {adapter.name}'s processor refuses "
                    f"{path} ({' '.join(str(error).split())}); resize or crop the picture"
                ) from None


def check_named_model_takes_images(config: ExperimentConfig) -> None:
    """``check_model_fits``' picture check from the model's name alone: a text-only model is
    refused before it loads."""
    if config.needs_images and not sees_images(config.model):
        raise _text_only(config.model, config)


def _text_only(model: str, config: ExperimentConfig) -> ConfigError:
    return ConfigError(
        f"{model} is text-only, but spec {config.spec!r} / query {config.query!r} needs images; use a "
        f"vision-language model, e.g. --model {DEFAULT_VLM}"
    )


def check_memory_budget(adapter: ModelAdapter, tasks: list[Task], config: ExperimentConfig) -> None:
    """The longest prompt of each task must fit the budget on its own in every step it goes
    through, checked before any forward pass with the costs the steps plan their batches by
    (``MemoryBudget``): a larger batch is split by the planners; only a single item can be too big."""
    budget = config.budget(adapter)
    max_tokens = budget.max_tokens(adapter)

    def answered(length: int) -> bool:  # what a prompt of ``length`` tokens holds while answered
        return budget.answer_row_tokens(length, config.answer_tokens) <= max_tokens

    swept = len(config.layers) if config.layers else adapter.num_layers
    seeds = len(config.seeds)
    for task in tasks:
        prompts = UnitPrompts(task, config, config.seeds[0])
        extraction = max(token_counts(adapter, prompts.extraction))
        base = max(token_counts(adapter, prompts.test_base))
        query = max(token_counts(adapter, [*prompts.val_queries, *prompts.test_queries]))
        # each step, whether its longest item fits, and what else than a larger budget would help
        # (the cure said was always fewer examples, which cannot shorten a query)
        examples, shorter = "lower --n-examples", "lower --answer-tokens"
        steps = [
            (f"prompt ({extraction} tokens) in one forward pass", extraction <= max_tokens, [examples]),
            (f"xBase prompt ({base} tokens) answered", answered(base), [examples, shorter]),
            (f"query ({query} tokens) answered", answered(query), [shorter]),
        ]
        if adapter.prefix_cache_is_exact:  # the fast paths' own costs
            fit = budget.sweep_query_bytes(adapter, query, swept) <= budget.bytes
            steps.append((f"query ({query} tokens) swept over {swept} layers", fit, ["fewer --layer"]))
            fit = budget.tokens_under_patches(query, seeds, config.answer_tokens) <= max_tokens
            under = f"query ({query} tokens) answered under {seeds} seeds' vectors"
            steps.append((under, fit, ["fewer --seed", shorter]))
        for step, fits, others in steps:
            if not fits:
                lower = " or ".join(others)
                raise MemoryBudgetError(
                    f"task {task.name!r}: its longest {step} needs more than the memory budget of "
                    f"{config.memory_budget_mb} MB allows for {adapter.name}; give a larger "
                    "--memory-budget-mb (unless given, it is sized to the device's free memory), "
                    f"or {lower}"
                )


def run_identity(
    config: ExperimentConfig, tasks: list[Task], model_fingerprint: str = "", data_fingerprint: str = ""
) -> str:
    """What a run folder's results depend on: the config (model name, template, layers, ...), the
    task data (items and images) and the weights. It names the folder, and a folder of another
    identity is refused (or, if only the seeds differ, extended), so changing any of them never
    reuses a result computed under the old one; units carry their own ``unit_identity``. The
    style counts only where a picture is drawn in it (``ExperimentConfig.as_run``)."""
    return _run_identity(config.as_run(tasks), tasks, model_fingerprint, data_fingerprint)


def _run_identity(hashed: ExperimentConfig, tasks: list[Task], model_fingerprint: str, data: str) -> str:
    """``run_identity`` of options already as the run hashes them (``_Hashing``)."""
    prints = [t.fingerprint() for t in tasks]
    return digest(hashed.config_hash(), *prints, model_fingerprint, data)


def unit_identity(config: ExperimentConfig, task: Task, model_fingerprint: str = "", images: str = "") -> str:
    """What one (task, seed) unit depends on: the config without its task and seed lists (a unit
    is computed for its own task and seed only), the task's data and images, and the weights. It
    keys the unit and vector cache, so a run that adds seeds reuses the units it already has. The
    layer selection is left out: it is made after the units, from their validation curves."""
    return _unit_identity(config.as_run([task]), task, model_fingerprint, images)


def _unit_identity(hashed: ExperimentConfig, task: Task, model_fingerprint: str, images: str) -> str:
    settings = _settings(hashed, {"tasks", "seeds", "layer_selection"})
    return digest(settings, task.fingerprint(), model_fingerprint, images)


def _lineage(hashed: ExperimentConfig, tasks: list[Task], model_fingerprint: str, images: str) -> str:
    """Runs that differ only in their seeds share a folder (each unit checks its own identity), so
    adding seeds to a finished run computes only the new units; so do runs that differ only in
    their layer selection (the same units, other test answers)."""
    prints = [t.fingerprint() for t in tasks]
    settings = _settings(hashed, {"seeds", "layer_selection"})
    return digest(settings, *prints, model_fingerprint, images)


class _Hashing:
    """How a run's identities count its options: as ``ExperimentConfig.as_run`` records them, or,
    in a folder an older taskvec wrote for this very run when its identity still counted the
    ``--style`` of a run that draws no picture in it, with that recorded style everywhere (the
    older formula). Such a folder then resumes, and reads back, under the identity it was written
    with: its units are reused and new ones stamped alike, never mixed with the new formula's."""

    def __init__(self, config: ExperimentConfig, older_style: str | None = None):
        self.config, self.older_style = config, older_style

    @classmethod
    def for_folder(
        cls, folder: RunFolder, config: ExperimentConfig, tasks: list[Task], fingerprint: str, images: str
    ) -> _Hashing:
        existing = folder.config()
        style = existing.get("experiment", {}).get("style")
        if not style or config.as_run(tasks).style is not None:
            return cls(config)
        older = cls(config, style)
        identity = _run_identity(older.of(tasks), tasks, fingerprint, images)
        lineage = _lineage(older.of(tasks), tasks, fingerprint, images)
        if existing.get("config_hash") == identity or existing.get("lineage") == lineage:
            return older
        return cls(config)  # another run's folder: refused as such

    def of(self, tasks: list[Task]) -> ExperimentConfig:
        """The options as hashed for (a unit of) ``tasks``."""
        if self.older_style:
            return self.config.model_copy(update={"style": self.older_style})
        return self.config.as_run(tasks)


def _settings(config: ExperimentConfig, exclude: set[str]) -> str:
    return json.dumps(config.for_identity().model_dump(mode="json", exclude=exclude), sort_keys=True)


def check_answers_scorable(adapter: ModelAdapter, tasks: list[Task], config: ExperimentConfig) -> None:
    """Warn, per task, of labels a metric can never credit under this model and template (the run
    stays valid for the others, so a warning, not a refusal): a label longer than the answer
    budget (``whole_label`` and ``exact`` read the greedy answer), and a label whose first token
    carries nothing of it, a bare space (SmolLM2 writes `` 10`` as ``" " "1" "0"``) or one byte
    of a letter (``paper`` and ``strict`` read that first token, and so does the layer choice)."""
    prefix = config.template.answer_prefix  # what the model writes after the delimiter, then the label
    for task in tasks:
        items = (*task.val, *task.test)
        # each answer as the model would write it after the delimiter; the label comes first
        written = [[adapter.text_token_ids(prefix + answer) for answer in item.answers] for item in items]
        shortest = [min(len(ids) for ids in answers) for answers in written]
        budget = config.answer_tokens
        long = [(item.label, count) for item, count in zip(items, shortest, strict=True) if count > budget]
        if long:
            warnings.warn(
                f"task {task.name!r}: {len(long)} of {len(items)} labels take more than the "
                f"{config.answer_tokens} answer tokens under {adapter.name} (e.g. {long[0][0]!r}, "
                f"{long[0][1]} tokens): whole_label and exact cannot credit them, in the model's answers "
                f"or the baselines'; an answer budget of {max(count for _, count in long)} tokens "
                "(--answer-tokens) would credit them",
                UnscorableLabelsWarning,
                stacklevel=2,
            )
        firsts = [
            (item.label, adapter.decode(answers[0][:1])) for item, answers in zip(items, written, strict=True)
        ]
        blind = [(label, first) for label, first in firsts if not first.strip() or "\ufffd" in first]
        if blind:
            label, first = blind[0]
            what = "a bare space" if not first.strip() else "part of a character"
            cure = " or use --template paper" if not first.strip() and prefix else ""
            warnings.warn(
                f"task {task.name!r}: {len(blind)} of {len(items)} labels begin with a token that is {what} "
                f"under template {config.template.name!r} on {adapter.name} (e.g. {label!r} starts "
                f"{first!r}): paper and strict, and the layer choice made by them, cannot credit those "
                f"answers; read whole_label{cure}",
                UnscorableLabelsWarning,
                stacklevel=2,
            )


class UnscorableLabelsWarning(ResultWarning):
    """Labels some metric can never credit under the run's model and template."""


def check_delimiter_kept(adapter: ModelAdapter, tasks: list[Task], config: ExperimentConfig) -> None:
    """Warn, per task, of labels the tokenizer merges with the delimiter in a demonstration
    (``A:-5`` is ``A`` ``:-`` ``5`` under the paper's template): the demonstrations then never
    show the lone delimiter token a query ends with, where the vector is read and patched, and
    the model may not take the query's delimiter for theirs (a task of negative numbers: xBase
    0.00 under ``paper``, 1.00 under ``spaced``)."""
    template = config.template
    for task in tasks:
        merged = []
        for item in (*task.val, *task.test):
            query = f"{template.input_prefix}{item.input}{template.separator}{template.output_prefix}"
            asked = adapter.text_token_ids(query)
            shown = adapter.text_token_ids(query + template.answer_prefix + item.label)
            if shown[: len(asked)] != asked:
                merged.append((item.label, adapter.decode_each(shown[len(asked) - 1 : len(asked) + 1])))
        if merged:
            label, tokens = merged[0]
            warnings.warn(
                f"task {task.name!r}: {len(merged)} of {len(task.val) + len(task.test)} labels merge "
                f"with the delimiter {template.delimiter!r} under template {template.name!r} on "
                f"{adapter.name} (e.g. {label!r} is written {tokens!r}): their demonstrations never "
                "show the lone delimiter token a query ends with, where the vector is read and "
                "patched; a template whose answer_prefix is a space (spaced) keeps them apart",
                DelimiterMergeWarning,
                stacklevel=2,
            )


class DelimiterMergeWarning(ResultWarning):
    """Labels whose demonstrations do not show the delimiter token the query ends with."""


def check_labels_tokenize(adapter: ModelAdapter, tasks: list[Task]) -> None:
    """A label the tokenizer turns into nothing, or only into the model's special (control)
    tokens, can never be scored as an answer."""
    special = adapter.special_token_ids
    for task in tasks:
        for item in (*task.val, *task.test):
            for answer in item.answers:
                ids = adapter.text_token_ids(answer)
                if not [i for i in ids if i not in special] or not adapter.decode(ids).strip():
                    raise TaskFileError(
                        f"task {task.name!r}: item {item.id!r}: answer {answer!r} tokenizes to nothing "
                        f"(or only to special tokens) under {adapter.name}; edit or drop the item in "
                        f"{task.source or 'the task file'}"
                    )


def _versions() -> dict:
    import platform

    import transformers

    import taskvec

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "taskvec": taskvec.__version__,
        # another thread count sums in another order: bitwise equality holds only at the same one
        "torch_threads": torch.get_num_threads(),
    }


def default_run_dir(
    config: ExperimentConfig,
    tasks: list[Task],
    root: Path = Path("runs"),
    model_fingerprint: str = "",
    data_fingerprint: str = "",
) -> Path:
    return _run_dir(root, config, run_identity(config, tasks, model_fingerprint, data_fingerprint))


def _run_dir(root: Path, config: ExperimentConfig, identity: str) -> Path:
    name = f"{config.model}-{config.spec}-{config.query}-{config.template.name}-{identity}"
    return root / name.replace("/", "_")


def _default_folder(config: ExperimentConfig, tasks: list[Task], fingerprint: str, images: str) -> Path:
    """``default_run_dir``, or where this run has none yet but an older taskvec, whose identity
    still counted the ``--style`` of a run that draws no picture in it, wrote one: that folder
    (named by that identity), so the same command resumes or reads it back (``_Hashing``)."""
    path = default_run_dir(config, tasks, Path("runs"), fingerprint, images)
    if path.exists() or config.as_run(tasks).style is not None:
        return path
    older = _run_dir(Path("runs"), config, _run_identity(config, tasks, fingerprint, images))
    return older if RunFolder(older).config_path.is_file() else path


def recorded_tasks(tasks: list[Task]) -> dict:
    """What a folder's config.json records of its tasks: each one's file and data fingerprint (a
    refusal of a folder then names a task whose data changed)."""
    return {t.name: {"source": t.source, "fingerprint": t.fingerprint()} for t in tasks}


def _finished_unit(
    folder: RunFolder,
    task: Task,
    seed: int,
    config: ExperimentConfig,
    adapter: ModelAdapter | None,
    identity: str,
) -> dict | None:
    """A unit on disk counts as done only if it and its vector were computed under its unit
    ``identity`` (``unit_identity``, which holds the model's fingerprint) and the vector file is
    intact; anything else is recomputed. Given the ``adapter``, the vector must also fit it."""
    unit = folder.load_unit(task.name, seed, identity)
    if unit is None:
        return None
    try:
        vector = TaskVector.load(folder.vector_path(task.name, config.spec, seed), adapter, same_model=True)
    except VectorMismatchError:
        return None
    if not_its_place(vector, task, seed, config, identity):
        return None
    return unit


def not_its_place(
    vector: TaskVector, task: Task, seed: int, config: ExperimentConfig, identity: str
) -> list[str]:
    """What a saved vector's metadata records that differs from the place it sits in (task, seed,
    spec, demonstrations, template, and the unit ``identity`` it was computed under), each as
    ``what recorded, not expected``: a vector copied over another's file reads back intact."""
    meta = vector.meta
    expected = {
        "run identity": (meta.run_identity, identity),
        "task": (meta.task, task.name),
        "seed": (meta.seed, seed),
        "spec": (meta.spec, config.spec),
        "n_examples": (meta.n_examples, 0 if config.spec == "instruction" else config.n_examples),
        "template": (meta.template, config.template.name),
    }
    if meta.template_spec:
        expected["template fields"] = (meta.template_spec, config.template.model_dump(mode="json"))
    return [f"{what} {then!r}, not {now!r}" for what, (then, now) in expected.items() if then != now]


@torch.no_grad()
def check_vectors_fit(source: ModelAdapter, adapter: ModelAdapter) -> None:
    """Vectors extracted in ``source`` can be patched into ``adapter``'s layers (LLM -> VLM
    transfer): the same depth and width, checked as soon as both are loaded."""
    if (source.hidden_size, source.num_layers) != (adapter.hidden_size, adapter.num_layers):
        raise VectorMismatchError(
            f"vectors from {source.name} ({source.num_layers} layers x {source.hidden_size}) do not fit "
            f"{adapter.name} ({adapter.num_layers} layers x {adapter.hidden_size}); LLM -> VLM transfer "
            "needs the same depth and width"
        )
    probe = "Q: France\nA: Paris\n\nQ: 火\nA:"  # letters, a line break, a CJK character
    if source.text_token_ids(probe) != adapter.text_token_ids(probe):
        warnings.warn(
            f"{source.name} writes text in other tokens than {adapter.name}: it is likely not the "
            "language model this VLM was built on, so its vectors come from another model's "
            "representations (LLM -> VLM transfer assumes the VLM's own base LLM)",
            ForeignVectorsWarning,
            stacklevel=2,
        )


class ForeignVectorsWarning(ResultWarning):
    """Vectors taken from a model that tokenizes text otherwise than the one they patch."""


def evaluate(
    config: ExperimentConfig,
    out: str | Path | None = None,
    adapter: ModelAdapter | None = None,
    show_progress: bool = True,
    vector_adapter: ModelAdapter | None = None,
    load_options: LoadOptions | None = None,
    shared: SharedWork | None = None,
) -> RunResult:
    """Run the paper's protocol for every task and seed of ``config`` into one run folder.

    Everything is validated before the first forward pass and before the folder is written; an
    interrupted run resumes from its finished units when called again with the same ``out``.

    ``vector_adapter`` extracts the task vectors in another model of the same width (LLM -> VLM
    transfer: the base LLM's vectors patched into the VLM); by default ``adapter`` does both.
    ``load_options`` (dtype, device map) apply when the model is loaded here. Results with
    identical inputs are computed once (``SharedWork``): within the run (the seeds' No Context
    answers) and, with ``shared``, across the runs of one reproduction."""
    with ExitStack() as held:
        return _evaluate(config, out, adapter, show_progress, vector_adapter, load_options, shared, held)


def _evaluate(
    config: ExperimentConfig,
    out: str | Path | None,
    adapter: ModelAdapter | None,
    show_progress: bool,
    vector_adapter: ModelAdapter | None,
    load_options: LoadOptions | None,
    shared: SharedWork | None,
    held: ExitStack,
) -> RunResult:
    """``evaluate``; the folder's lock, where it is taken before the model loads, stays in
    ``held`` until the run ends."""
    started = time.perf_counter()
    adapter = given_model(adapter, "evaluate")
    vector_adapter = given_model(vector_adapter, "evaluate")
    ranks = current_ranks()
    show_progress = show_progress and ranks.is_main  # one bar per launch: rank 0's
    tasks, images = _validate(config)
    if out is not None:
        ranks.check_folder(RunFolder(out))
        numerics = adapter.numerics if adapter is not None else (load_options or LoadOptions()).numerics()
        _refuse_other_options(RunFolder(out), config, tasks, numerics or "float32")
    else:
        check_writable(Path("runs"))  # where the default folder goes, before a model loads
    known = RunFolder(out) if out is not None else None  # the run's folder, where known before loading
    if adapter is None and vector_adapter is None and not ranks.parallel:
        finished, found = _finished_before_loading(config, out, tasks, images, load_options, show_progress)
        if finished is not None:
            announce(f"{finished.folder.root} {_READ_BACK}", show_progress)
            return finished
        known = found or known
    locked = None  # the folder whose lock this call took before loading (none for a model given)
    if adapter is None and known is not None:
        # held through loading and the run: the same command started twice is refused before its
        # model loads, not after (two commands that both passed a check would both load)
        held.enter_context(ranks.folder_lock(known))
        locked = known
    # what this launch says about the run's inputs, kept with its results (a run read back above
    # says what it recorded instead)
    said = held.enter_context(recorded_warnings())
    if adapter is None:
        check_named_model_takes_images(config)
        check_layers_before_loading(config.model, config.layers or [])
        announce(f"loading {config.model} ...", show_progress)
        adapter = load_model(config.model, load_options)
    else:
        config = config.named_after(adapter.name, names_of(adapter.name))
    config = sized_to(config, adapter)  # every batch of the run planned by one budget
    check_model_fits(adapter, config)
    check_pictures_processable(adapter, tasks, config)
    check_labels_tokenize(adapter, tasks)
    check_answers_scorable(adapter, tasks, config)
    check_delimiter_kept(adapter, tasks, config)
    check_memory_budget(adapter, tasks, config)
    source = vector_adapter or adapter
    # a task's seeds ask the same queries: their No Context answers are computed once (a run's
    # other work differs from seed to seed and is not kept)
    shared = shared if shared is not None else SharedWork(only={"greedy answers"})
    check_vectors_fit(source, adapter)
    fingerprint = adapter.fingerprint if source is adapter else f"{adapter.fingerprint}<-{source.fingerprint}"
    folder, hashing, identity, unit_ids, lineage = _identities(config, out, tasks, fingerprint, images)
    images_hash = _images_hash(images)
    resolved = {
        # the style only where drawn; config.json of an older folder keeps the style it recorded
        "experiment": hashing.of(tasks).model_dump(mode="json"),
        "model": adapter.describe(),
        "vector_model": source.describe(),
        "tasks": recorded_tasks(tasks),
        "images": images_hash,
        "task_images": images,
        "versions": _versions(),
    }
    if config.needs_images:  # the pictures shown (image ICL shows the val split's; image queries both)
        resolved["pictures"] = pictures_shown(tasks, config.style, config.picture_splits)
    # before anything is written: another run's folder stays untouched (a lock taken before
    # loading wrote nothing in it; its lock file was there)
    folder.refuse_other_run(identity, lineage, resolved)
    # one command per folder: a second one is refused, never mixed in (taken already, or now)
    with nullcontext() if locked is not None and locked.root == folder.root else ranks.folder_lock(folder):
        finished = None
        if ranks.is_main:
            finished = _finished_run(
                folder, tasks, config, source, identity, unit_ids, show_progress, holds_lock=True
            )
            if finished is None:
                _refuse_fewer_seeds(folder, config, identity, lineage)
                folder.start(resolved, identity, lineage=lineage)
        ranks.barrier()  # the folder is open (or complete) for every rank
        if not ranks.is_main:
            finished = _finished_run(folder, tasks, config, source, identity, unit_ids)
        if finished is not None:
            announce(f"{folder.root} {_READ_BACK}", show_progress)
            return finished

        done = {
            (t.name, s): _finished_unit(folder, t, s, config, source, unit_ids[t.name])
            for t in tasks
            for s in config.seeds
        }
        resumed = sum(unit is not None for unit in done.values())
        if resumed:
            announce(
                f"resuming {folder.root}: {resumed} of {len(done)} units already computed", show_progress
            )
        # only between default folders (a folder given by --out may be a deliberate second
        # computation); under a launcher each rank computes the units it claims
        if out is None and not ranks.parallel:
            copied = _copy_units_beside(folder, tasks, config, source, unit_ids, lineage, done)
            done.update({key: unit for key, (unit, _) in copied.items()})
            if copied:
                origins = ", ".join(sorted({origin for _, origin in copied.values()}))
                announce(f"{len(copied)} unit(s) copied from {origins}, the same units there", show_progress)
        pending = {
            _unit_key(t.name, s): (t, s) for t in tasks for s in config.seeds if done[(t.name, s)] is None
        }
        with progress_bar(show_progress) as progress:
            bar = progress.add_task(
                "units (task x seed)", total=len(done), completed=len(done) - len(pending)
            )
            # inside the unit: its current step, counted as it goes (prompts, sweep rows, answers)
            steps = progress.add_task("", total=None, visible=bool(pending))

            def on_step(index: int, count: int, name: str) -> None:
                description = f"  {name} (step {index + 1}/{count})"
                progress.reset(steps, description=description, unit=STEP_COUNTS.get(name, ""))

            def on_progress(count: int, total: int) -> None:
                progress.update(steps, total=total, completed=count)

            # in one process every pending unit in turn; under a launcher those this rank claims
            claimed = False
            for key in ranks.each(folder.path("units"), list(pending)):
                claimed = True
                task, seed = pending[key]
                progress.update(bar, description=f"{task.name} {config.spec} seed {seed}")
                with recorded_warnings() as unit_said:  # kept in the unit: a later launch may resume
                    unit, vector = run_unit(adapter, task, seed, config, source, shared, on_step, on_progress)
                if unit_said:
                    unit = {**unit, WARNINGS: unit_said}
                last = next(t for t in progress.tasks if t.id == steps)
                progress.update(steps, completed=last.total or 0)  # the unit's last step is done too
                vector = TaskVector(vector.vectors, _provenance(vector, config, unit_ids[task.name]))
                # the vector first: a unit on disk always has its vector (a kill in between recomputes)
                vector.save(folder.vector_path(task.name, config.spec, seed), overwrite=True)
                folder.save_unit(unit, unit_ids[task.name])
                done[(task.name, seed)] = unit
                progress.advance(bar)
                if ranks.parallel:  # the launch's units on disk, not only this rank's
                    on_disk = sum(folder.unit_path(t.name, s).is_file() for t in tasks for s in config.seeds)
                    progress.update(bar, completed=on_disk)
            if not claimed:
                progress.update(steps, visible=False)  # this rank claimed no unit: no step to show
            ranks.barrier()  # every unit is on disk: the launch's bar ends full, not at this rank's share
            progress.update(bar, completed=len(done))
        for (name, seed), unit in done.items():  # units other ranks computed
            if unit is None:
                task = next(t for t in tasks if t.name == name)
                done[(name, seed)] = _finished_unit(folder, task, seed, config, source, unit_ids[name])
                if done[(name, seed)] is None:  # written by a rank that finished: only damage explains it
                    raise StorageError(_unreadable(folder, folder.unit_path(name, seed)))
        units = [done[(t.name, s)] for t in tasks for s in config.seeds]

        val_scores = layer_scores(units, "val")
        best = choose_layer(val_scores, config.selection_metric)  # the same on every rank
        task_layers = choose_layers(val_scores, config.selection_metric, config.layer_selection)
        answers = {}
        with progress_bar(show_progress) as progress:
            total = len(config.seeds) * sum(len(t.test) for t in tasks)
            bar = progress.add_task("test answers at the chosen layer", total=total, unit="answers")
            answered = 0  # (item, seed) answers of the tasks before this one
            # in one process each task in turn; under a launcher each rank answers the tasks it claims
            for key in ranks.each(folder.path("units"), [_answers_key(t.name) for t in tasks]):
                task = next(t for t in tasks if _answers_key(t.name) == key)
                vectors = {
                    seed: TaskVector.load(
                        folder.vector_path(task.name, config.spec, seed), source, same_model=True
                    )
                    for seed in config.seeds
                }
                layer = task_layers[task.name]
                progress.update(bar, description=f"{task.name}: test answers at layer {layer}")
                told = progress_from(lambda count, _: progress.update(bar, completed=count), answered, total)
                for seed, seed_answers in patched_answers(
                    adapter, task, config, vectors, layer, shared, told
                ).items():
                    answers[(task.name, seed)] = seed_answers
                answered += len(config.seeds) * len(task.test)
                progress.update(bar, completed=answered)
                if ranks.parallel:  # for rank 0 to write the results with
                    stamp = f"{unit_ids[task.name]}/layer{layer}"
                    _save_answers(folder, task.name, answers, config.seeds, stamp)
            ranks.barrier()  # every task's test answers are there (the bar: the launch's, all of them)
            progress.update(bar, completed=total)
        announce("writing results ...", show_progress)
        if not ranks.is_main:
            ranks.barrier()  # rank 0 writes the results, then every rank reads them back
            finished = _finished_run(folder, tasks, config, source, identity, unit_ids)
            if finished is None:
                raise StorageError(_unreadable(folder, folder.root / "predictions.jsonl"))
            return finished
        if ranks.parallel:
            for task in tasks:
                stamp = f"{unit_ids[task.name]}/layer{task_layers[task.name]}"
                answers.update(_load_answers(folder, task.name, config.seeds, stamp))
        predictions = split_predictions(units, task_layers, answers)
        predictions = with_run_columns(predictions, config, task_layers, adapter.name, tasks)

        test_scores = layer_scores(units, "test")
        write_predictions(folder.root, predictions)
        scores = (val_scores, test_scores)
        shown = {**resolved, "experiment": config.as_run(tasks).model_dump(mode="json")}  # as a fresh run
        warned = _run_warnings(said, units)
        write_results(
            folder.root, shown, predictions, *scores, best, config.selection_metric, task_layers, warned
        )
        folder.finish(
            best_layer=best,
            layer_selection=config.layer_selection,
            task_layers=task_layers,
            seconds=round(time.perf_counter() - started, 1),
            peak_rss_mb=_peak_rss_mb(),
            memory_budget_mb=config.memory_budget_mb,  # this launch's: a resumed run may have had others
        )
        selection = config.layer_selection
        result = RunResult(
            folder, best, val_scores, predictions, task_layers, selection, test_scores, config, warned
        )
        ranks.barrier()  # the folder is complete for the other ranks
        return result


def _unreadable(folder: RunFolder, path: Path) -> str:
    """Under a launcher: what another rank of this launch wrote does not read back here."""
    return (
        f"{path} does not read back on this rank though another rank of this launch wrote it: is "
        f"{folder.root} on storage every rank sees the same way? The same command resumes the run"
    )


#: what a run says when its folder already holds it, complete
_READ_BACK = "holds this run, complete: read back, nothing computed"


def _identities(
    config: ExperimentConfig,
    out: str | Path | None,
    tasks: list[Task],
    fingerprint: str,
    images: dict[str, str],
) -> tuple[RunFolder, _Hashing, str, dict[str, str], str]:
    """The run's folder, how its identities count the options there (``_Hashing``), and its
    run, unit and lineage identities under the model ``fingerprint``."""
    images_hash = _images_hash(images)
    folder = RunFolder(out or _default_folder(config, tasks, fingerprint, images_hash))
    hashing = _Hashing.for_folder(folder, config, tasks, fingerprint, images_hash)
    identity = _run_identity(hashing.of(tasks), tasks, fingerprint, images_hash)
    unit_ids = {t.name: _unit_identity(hashing.of([t]), t, fingerprint, images[t.name]) for t in tasks}
    lineage = _lineage(hashing.of(tasks), tasks, fingerprint, images_hash)
    return folder, hashing, identity, unit_ids, lineage


def _finished_before_loading(
    config: ExperimentConfig,
    out: str | Path | None,
    tasks: list[Task],
    images: dict[str, str],
    load_options: LoadOptions | None,
    show_progress: bool = False,
) -> tuple[RunResult | None, RunFolder | None]:
    """A complete folder of this very run, read back with the fingerprint the model will have,
    known from its weight files (``fingerprint_before_loading``): the same command run again
    (a script resumed after a crash) costs seconds, not a 7B model's loading. Anything less
    than complete goes through loading as before: ``(None, the run's folder)``, which the caller
    locks before it loads (the folder is None where the fingerprint is not known before loading)."""
    fingerprint = fingerprint_before_loading(config.model, load_options)
    if fingerprint is None:
        return None, None
    folder, finished = _read_back(config, out, tasks, images, fingerprint, show_progress)
    return finished, folder


def finished_run(config: ExperimentConfig, out: str | Path, fingerprint: str) -> RunResult | None:
    """The complete folder ``out`` of this very run under the model of ``fingerprint`` (``a<-b``:
    vectors extracted in ``b``, patched into ``a``), read back with no model, or None where a
    unit or vector is missing, damaged or another run's, or a task file or picture is gone. A
    reproduction read back before its models load checks each of its runs so."""
    try:
        tasks, images = _validate(config)
    except TaskvecError:
        return None
    return _read_back(config, out, tasks, images, fingerprint)[1]


def _read_back(
    config: ExperimentConfig,
    out: str | Path | None,
    tasks: list[Task],
    images: dict[str, str],
    fingerprint: str,
    show_progress: bool = False,
) -> tuple[RunFolder, RunResult | None]:
    """The run's folder under the model of ``fingerprint``, and the run read back from it (None
    where it is not this very run, complete)."""
    folder, _, identity, unit_ids, _ = _identities(config, out, tasks, fingerprint, images)
    return folder, _finished_run(folder, tasks, config, None, identity, unit_ids, show_progress)


#: options a folder's run may differ in and still be this run's (extended, read at another layer,
#: resumed under another memory budget), and those told apart only once the model is loaded: the
#: model (an alias loads the model another name records) and the style (an older taskvec recorded
#: it for text runs)
_SETTLED_AFTER_LOADING = {"seeds", "layer_selection", "model", "style", *ExperimentConfig.identity_values}


def _refuse_other_options(
    folder: RunFolder, config: ExperimentConfig, tasks: list[Task], numerics: str
) -> None:
    """A folder that holds a run of other options is refused before the model loads; the weights,
    task data and pictures are compared once they are known (``RunFolder.refuse_other_run``). A
    complete run of the same model and ``numerics`` (as its config.json records them) asked for
    without some of its seeds is refused here too, as ``_refuse_fewer_seeds`` would after the load
    (of another model or numerics, the refusal after the load names what differs)."""
    if folder.kind() != "run":
        return
    asked = config.as_run(tasks).model_dump(mode="json", exclude=_SETTLED_AFTER_LOADING)
    folder.refuse_other_options({"experiment": asked})
    existing = folder.config()
    same_model = existing.get("experiment", {}).get("model") == config.model
    if same_model and existing.get("model", {}).get("numerics") == numerics and folder.is_complete():
        _refuse_dropped_seeds(folder, existing, config)


def _copy_units_beside(
    folder: RunFolder,
    tasks: list[Task],
    config: ExperimentConfig,
    source: ModelAdapter,
    unit_ids: dict[str, str],
    lineage: str,
    done: dict,
) -> dict[tuple[str, int], tuple[dict, str]]:
    """The units this run lacks that a run folder beside it holds, finished under the same unit
    identity, copied in (the vector first, then the unit) instead of computed again: the same run
    with other seeds or another layer selection, which default folders (named by the whole run)
    keep apart. ``(task, seed) -> (unit, the folder it came from)``. A run in a folder of its own
    (``--out``) computes its units itself: it may be meant as a second computation."""
    missing = [(t, s) for t in tasks for s in config.seeds if done[(t.name, s)] is None]
    copied: dict[tuple[str, int], tuple[dict, str]] = {}
    for other in _same_lineage_beside(folder, lineage) if missing else []:
        for task, seed in missing:
            found = (task.name, seed) not in copied and _unit_beside(
                other, task, seed, config, source, unit_ids
            )
            if found:
                unit, vector = found
                vector.save(folder.vector_path(task.name, config.spec, seed), overwrite=True)
                folder.save_unit(unit, unit_ids[task.name])
                copied[(task.name, seed)] = (unit, other.root.name)
    return copied


def _same_lineage_beside(folder: RunFolder, lineage: str) -> list[RunFolder]:
    """The run folders beside ``folder`` of the same ``lineage`` (this run, other seeds or layer
    selection); a folder this user may not read is left alone."""
    try:
        paths = sorted(path for path in folder.root.parent.iterdir() if path != folder.root)
    except OSError:
        return []
    beside = []
    for path in paths:
        other = RunFolder(path)
        try:
            if (
                other.config_path.is_file()
                and other.kind() == "run"
                and other.config().get("lineage") == lineage
            ):
                beside.append(other)
        except (OSError, TaskvecError):
            continue
    return beside


def _unit_beside(
    other: RunFolder, task: Task, seed: int, config: ExperimentConfig, source: ModelAdapter, unit_ids: dict
) -> tuple[dict, TaskVector] | None:
    """A finished unit of this run in the folder ``other``, with its vector; None where it has
    none, or it cannot be read."""
    try:
        unit = _finished_unit(other, task, seed, config, source, unit_ids[task.name])
        if unit is None:
            return None
        return unit, TaskVector.load(other.vector_path(task.name, config.spec, seed))
    except (OSError, TaskvecError):
        return None


def _refuse_fewer_seeds(folder: RunFolder, config: ExperimentConfig, identity: str, lineage: str) -> None:
    """A complete run is extended to more seeds, never shrunk: a command that leaves out one of a
    complete folder's seeds would rewrite its tables without it."""
    existing = folder.config()
    if not folder.is_complete() or existing.get("config_hash") == identity:
        return
    if existing.get("lineage") != lineage:
        return
    _refuse_dropped_seeds(folder, existing, config)


def _refuse_dropped_seeds(folder: RunFolder, existing: dict, config: ExperimentConfig) -> None:
    """``_refuse_fewer_seeds``' refusal, where the complete folder's record is ``existing``."""
    seeds = existing.get("experiment", {}).get("seeds", [])
    dropped = sorted(set(seeds) - set(config.seeds))
    if dropped:
        raise ConfigError(
            f"{folder.root} holds a complete run of seeds {seeds}; this command asks for seeds "
            f"{config.seeds}, which would drop seed(s) {dropped} from its tables; ask for all of "
            f"{seeds} (and more) to extend it, or choose another --out"
        )


def _finished_run(
    folder: RunFolder,
    tasks: list[Task],
    config: ExperimentConfig,
    source: ModelAdapter | None,
    identity: str,
    unit_ids: dict[str, str],
    show_progress: bool = False,
    holds_lock: bool = False,
) -> RunResult | None:
    """A complete folder of this very run is read back instead of recomputed (its status is
    written last, so 'complete' means every file is in place); any damaged unit or vector sends
    the run through the normal resume path. ``source``, the model the vectors were extracted in,
    is None before it loads (``_finished_before_loading``).

    The units are the source of truth: the layers are chosen from them again and the predictions
    rebuilt from them as a completing run builds them, taking from predictions.jsonl only the
    xPatch answers at those layers, which no unit holds. Where those are missing or damaged, the
    run completes again (None); a derived file that is missing or disagrees is rewritten (under
    the folder's lock, which ``holds_lock`` says the caller has) and the run says so."""
    if not folder.is_complete_for(identity):
        return None
    units = [
        _finished_unit(folder, t, s, config, source, unit_ids[t.name]) for t in tasks for s in config.seeds
    ]
    if any(unit is None for unit in units):
        return None
    val_scores, test_scores = layer_scores(units, "val"), layer_scores(units, "test")
    best = choose_layer(val_scores, config.selection_metric)
    task_layers = choose_layers(val_scores, config.selection_metric, config.layer_selection)
    answers, lacking = _recorded_answers(folder, units, task_layers)
    if answers is None:
        said = show_progress and holds_lock  # once: by the read-back under the lock, which then completes
        announce(f"{folder.root}: {lacking}; computing them again from its units", said)
        return None
    recorded = folder.config()
    predictions = split_predictions(units, task_layers, answers)
    predictions = with_run_columns(predictions, config, task_layers, recorded["model"]["name"], tasks)
    scores, metric = (val_scores, test_scores), config.selection_metric
    resolved, warned = _results_record(folder, recorded, units)
    files = derived_files(folder.root, resolved, predictions, *scores, best, metric, task_layers, warned)
    stale = {path: text for path, text in files.items() if _text_of(path) != text}
    if stale:
        with nullcontext() if holds_lock else folder.lock():
            for path, text in stale.items():
                write_atomic(path, text)
        names = ", ".join(str(path.relative_to(folder.root)) for path in stale)
        said = f"{names} missing, damaged or of an older taskvec, rewritten from its units"
        announce(f"{folder.root}: {said}", show_progress)
    selection = config.layer_selection
    return RunResult(
        folder, best, val_scores, predictions, task_layers, selection, test_scores, config, warned or []
    )


def _recorded_answers(
    folder: RunFolder, units: list[dict], task_layers: dict[str, int]
) -> tuple[dict | None, str]:
    """``(task, seed) -> [(first token, answer)]`` of each unit's test items, xPatch at its task's
    chosen layer, as predictions.jsonl recorded them; ``(None, what is wrong)`` where a row is
    missing, damaged or read at another layer, or results.json does not vouch for them (an edited
    answer was read back as a result, and re-checksummed)."""
    rows, damaged = prediction_rows(folder.root)
    xpatch = {
        (row.get("task"), row.get("seed"), row.get("item")): row
        for row in rows
        if row.get("method") == "xpatch"
    }
    answers, missing = {}, 0
    for unit in units:
        found = []
        for item in unit["test"]:
            row = xpatch.get((unit["task"], unit["seed"], item["id"]))
            if row is None or row.get("layer") != task_layers[unit["task"]]:
                missing += 1
                continue
            found.append((row.get("prediction"), row.get("answer")))
        answers[(unit["task"], unit["seed"])] = found
    if not missing:
        untrusted = recorded_answers_check(folder.root, rows)
        return (None, untrusted) if untrusted else (answers, "")
    cut = f" ({damaged} line(s) do not parse)" if damaged else ""
    return None, f"{PREDICTIONS_FILE} lacks {missing} xPatch test answer(s){cut}"


def _results_record(folder: RunFolder, recorded: dict, units: list[dict]) -> tuple[dict, list[str] | None]:
    """The config and warnings a finished run recorded in results.json (those of the launch that
    completed it; None where a taskvec that recorded none wrote it), or where that file is damaged,
    config.json's config and the warnings its units recorded (those said by the checks of the
    launch that completed it are lost with the file)."""
    try:
        results = json.loads(folder.path(RESULTS_FILE).read_text(encoding="utf-8"))
        if isinstance(results, dict) and isinstance(results.get("config"), dict) and seal_holds(results):
            warned = results.get(WARNINGS)
            return results["config"], list(warned) if isinstance(warned, list) else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        pass
    config = {key: value for key, value in recorded.items() if key not in ("config_hash", "lineage")}
    return config, _run_warnings([], units)


def _run_warnings(said: list[str], units: list[dict]) -> list[str]:
    """A run's warnings, each once: those this launch said outside its units (the checks, the test
    answers), then those its units recorded when computed, in the units' order (tasks x seeds),
    whichever launch or rank computed them: equal runs give equal files, resumed or not."""
    in_units = [text for unit in units for text in unit.get(WARNINGS, [])]
    return list(dict.fromkeys([*(text for text in said if text not in in_units), *in_units]))


def _text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _unit_key(task: str, seed: int) -> str:
    """A unit's name in the claim record (its file name in ``units/``)."""
    return f"{task}__seed{seed}"


def _answers_key(task: str) -> str:
    """A task's test answers at the chosen layer in the claim record (a launch's ranks share
    them out; the file ``units/answers/<task>.json`` hands them to rank 0)."""
    return f"answers/{task}"


def _save_answers(folder: RunFolder, task: str, answers: dict, seeds: list[int], stamp: str) -> None:
    rows = {str(seed): [list(pair) for pair in answers[(task, seed)]] for seed in seeds}
    write_json(folder.path("units", f"{_answers_key(task)}.json"), {"stamp": stamp, "answers": rows})


def _load_answers(folder: RunFolder, task: str, seeds: list[int], stamp: str) -> dict:
    """``(task, seed) -> [(first token, answer)]`` as ``patched_answers`` gave them to the rank
    that computed them (written this launch: ``stamp`` names the units and the layer)."""
    saved = json.loads(folder.path("units", f"{_answers_key(task)}.json").read_text(encoding="utf-8"))
    if saved["stamp"] != stamp:
        raise StorageError(f"{folder.root}: the test answers of task {task!r} are of another run or layer")
    return {(task, seed): [tuple(pair) for pair in saved["answers"][str(seed)]] for seed in seeds}


def _provenance(vector: TaskVector, config: ExperimentConfig, identity: str):
    """The vector's metadata with what the run knows: the full template and the cache key."""
    return vector.meta.model_copy(
        update={"template_spec": config.template.model_dump(mode="json"), "run_identity": identity}
    )


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


__all__ = [
    "RunResult",
    "default_run_dir",
    "evaluate",
    "layer_curve",
    "run_identity",
    "unit_identity",
    "validate_inputs",
]
