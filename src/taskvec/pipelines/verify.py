"""``verify_run``: re-derive every task vector of a run folder and compare it with the saved one.

A run's vectors record which items built each prompt (``VectorMeta.sources``: split, index, id,
the text or picture shown, a digest of the prompt). From the folder's ``config.json`` (options,
template, each task's fingerprint), the task files and the model, the very prompts are built again
from those records (not by sampling again), each vector is extracted again through the protocol's
own code (``task_vector_for``), and compared with the saved one:

- ``equal``: bitwise, as expected on the same machine with the same numerics (dtype, device);
- ``close``: within ``Tolerance``, a relative error per layer (another machine's float order,
  or other numerics).

Nothing that cannot give the same vector is run: a task file whose fingerprint differs from the
recorded one, changed pictures, other weights, or a vector that records no sources are refused
in one line before the model loads (weights: before any forward pass). A saved vector file that is
damaged (its checksum fails), or whose metadata names another place than the one it sits in (a
vector copied over another re-derives equal from its own record), is a finding, not a refusal:
listed as such, the others still checked.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from taskvec.errors import ConfigError, ModelSpecError, TaskFileError, TaskvecError, VectorFileError
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts, task_vector_for
from taskvec.models.adapter import ModelAdapter, given_model
from taskvec.models.registry import LoadOptions, load_model
from taskvec.pipelines.evaluate import check_images, not_its_place
from taskvec.pipelines.progress import announce, progress_bar
from taskvec.storage.run_folder import RunFolder, runs_under
from taskvec.tasks.registry import BUILTIN_TASKS, canonical_task_name, load_task
from taskvec.tasks.task import Item, Task
from taskvec.vectors.provenance import Shown
from taskvec.vectors.task_vector import TaskVector


@dataclass(frozen=True)
class Tolerance:
    """``close`` means ``||re-derived - saved|| <= rel_l2 * ||saved||`` at every layer (L2 norms
    of the layer's vector). Relative per layer, not per value: a layer's vector holds values of
    every size (a few reach hundreds), and other numerics move each in proportion to the whole."""

    rel_l2: float


#: float32 on both sides (another machine, another BLAS or thread count): summation order only
FLOAT32 = Tolerance(rel_l2=1e-4)
#: other numerics than the run's (e.g. a bfloat16 GPU run re-derived in float32 on a CPU): a
#: float32 SmolLM2 vector re-derived in bfloat16 on the CPU is 0.0078 off at its worst layer,
#: in float16 0.0009 (docs/reliability.md)
OTHER_NUMERICS = Tolerance(rel_l2=2e-2)


@dataclass(frozen=True)
class VectorCheck:
    """One saved vector against its re-derivation."""

    task: str
    seed: int
    spec: str
    path: Path
    equal: bool  # bitwise
    close: bool  # within the verification's tolerance
    max_abs_diff: float
    rel_l2: float  # the largest ||diff|| / ||saved|| of a layer
    prompts_rebuilt: bool  # every rebuilt prompt has the recorded digest (text and pixels)
    sampling_agrees: bool  # today's seeded sampling draws the recorded demonstrations too
    #: why the saved file could not be read (corrupt, edited), or holds another place's vector (its
    #: metadata names another task, seed, spec, ... or run): nothing to re-derive it from
    damaged: str = ""

    @classmethod
    def of_damaged(cls, task: str, seed: int, spec: str, path: Path, reason: str) -> VectorCheck:
        return cls(task, seed, spec, path, False, False, math.inf, math.inf, False, False, reason)


@dataclass
class Verification:
    folder: Path
    model: str
    same_numerics: bool  # the run's weights and numerics (dtype, device) are the ones used here
    tolerance: Tolerance
    checks: list[VectorCheck] = field(default_factory=list)
    #: the torch thread counts of the run (None: not recorded) and of this check
    threads: tuple[int | None, int] = (None, 1)

    @property
    def ok(self) -> bool:
        return all(check.close for check in self.checks)

    def summary(self) -> str:
        equal = sum(check.equal for check in self.checks)
        close = sum(check.close for check in self.checks)
        total = len(self.checks)
        tolerance = f"{self.tolerance.rel_l2:g} relative error per layer"
        numerics = "same weights and numerics" if self.same_numerics else "same weights, other numerics"
        damaged = sum(bool(check.damaged) for check in self.checks)
        unreadable = f"; {damaged} saved vector file(s) damaged" if damaged else ""
        ran, here = self.threads
        threads = ""
        if ran is not None and ran != here and equal < total:
            threads = (
                f"; the run used {ran} torch thread(s), this check {here}: another thread count sums "
                f"in another order, so only the tolerance applies (set OMP_NUM_THREADS={ran} for bitwise)"
            )
        return (
            f"{equal} of {total} vectors re-derived bitwise equal, {close} of {total} within "
            f"{tolerance} ({numerics}; {self.model}){unreadable}{threads}"
        )


def verify_run(
    run: str | Path,
    adapter: ModelAdapter | None = None,
    *,
    task_files: Sequence[str | Path] = (),
    load_options: LoadOptions | None = None,
    show_progress: bool = False,
) -> Verification:
    """Re-derive every vector of the run folder ``run`` and compare each with the saved one.

    ``adapter``: the model to extract with (default: the run's model, loaded by its name).
    ``task_files``: task files to use instead of the recorded places (a task file that moved),
    matched to the run's tasks by their name. Raises a ``TaskvecError`` (one line) for a task file
    or picture that changed since the run, other weights, or vectors without recorded sources."""
    folder = RunFolder(run)
    given = _given(task_files, [folder])
    adapter = given_model(adapter, "verify_run")
    (verification,) = _verify_all([folder], adapter, given, load_options, show_progress)
    return verification


def run_folders(root: str | Path) -> list[Path]:
    """``root`` if it is a run folder, else every run folder under it (a reproduction's stages:
    one ``taskvec run`` folder per condition), in path order."""
    found = runs_under(root)
    if not found:
        raise RunFolder(root).not_a_run()
    return found


def verify_runs(
    root: str | Path,
    adapter: ModelAdapter | None = None,
    *,
    task_files: Sequence[str | Path] = (),
    load_options: LoadOptions | None = None,
    show_progress: bool = False,
) -> list[Verification]:
    """``verify_run`` on every run folder of ``root`` (``run_folders``), each model loaded once.
    Every folder's inputs are checked before any model loads."""
    folders = [RunFolder(folder) for folder in run_folders(root)]
    given = _given(task_files, folders)
    return _verify_all(folders, given_model(adapter, "verify_runs"), given, load_options, show_progress)


def _verify_all(
    folders: Sequence[RunFolder],
    adapter: ModelAdapter | None,
    given: Mapping[str, Task],
    load_options: LoadOptions | None,
    show_progress: bool,
) -> list[Verification]:
    """Every folder's inputs are checked before any model loads, and each folder's model (loaded
    once, ``adapter`` if given) against its vectors' weights before the first vector is
    re-derived; then one bar counts the vectors of all the folders as they are re-derived."""
    inputs = [_inputs(folder, given) for folder in folders]  # a changed task file: refused here
    models: dict[tuple, ModelAdapter] = {}
    verifications, work = [], []
    for folder, (recorded, config, tasks, vectors) in zip(folders, inputs, strict=True):
        model = adapter
        if model is None:
            options = load_options or LoadOptions(dtype=_run_dtype(recorded))
            key = (_model_name(recorded), options)
            if key not in models:
                announce(f"loading {key[0]} ...", show_progress)
                models[key] = load_model(key[0], options)
            model = models[key]
        readable = [vector for vector in vectors.values() if isinstance(vector, TaskVector)]
        same_numerics = _check_weights(folder, model, readable)
        tolerance = FLOAT32 if same_numerics and not model.numerics else OTHER_NUMERICS
        threads = (recorded.get("versions", {}).get("torch_threads"), torch.get_num_threads())
        verification = Verification(folder.root, model.name, same_numerics, tolerance, threads=threads)
        verifications.append(verification)
        work += [
            (verification, folder, model, config, task, seed, vectors)
            for task in tasks
            for seed in config.seeds
        ]
    # each run by its place among the others (a reproduction's: conditions/<condition>)
    common = Path(os.path.commonpath([folder.root.resolve() for folder in folders]))
    with progress_bar(show_progress) as progress:
        bar = progress.add_task("re-deriving vectors", total=len(work), unit="vectors")
        for verification, folder, model, config, task, seed, vectors in work:
            where = f"{folder.root.resolve().relative_to(common)}: " if len(folders) > 1 else ""
            progress.update(bar, description=f"{where}{task.name} seed {seed}")
            path = folder.vector_path(task.name, config.spec, seed)
            saved = vectors[(task.name, seed)]
            if isinstance(saved, TaskVector):
                check = _check(model, task, seed, config, saved, path, verification.tolerance)
            else:  # its load's refusal: listed among the checks, the others still run
                check = VectorCheck.of_damaged(task.name, seed, config.spec, path, saved)
            verification.checks.append(check)
            progress.advance(bar)
    return verifications


def rederive(adapter: ModelAdapter, task: Task, seed: int, config: ExperimentConfig, saved: TaskVector):
    """The vector ``saved`` re-derived: its recorded prompts built again from ``task`` and
    extracted by ``adapter``. Returns ``(vector, sampling_agrees)``."""
    prompts = UnitPrompts(task, config, seed)
    sampled = [[d.id for d in demos] for demos in prompts.val_demos]
    sampling_agrees = True
    if config.spec != "instruction":
        icl = [source for source in saved.meta.sources if source.kind == "icl"]
        queries = [_item(task, source.query, saved) for source in icl]
        if [q.id for q in queries] != [q.id for q in task.val]:
            raise VectorFileError(
                f"{saved.meta.task} seed {seed}: the vector's prompts ask {[q.id for q in queries]}, "
                f"not the val split in its order; the record does not come from this run's protocol"
            )
        prompts.val_demos = [[_item(task, demo, saved) for demo in source.demos] for source in icl]
        sampling_agrees = sampled == [[d.id for d in demos] for demos in prompts.val_demos]
    return task_vector_for(adapter, prompts), sampling_agrees


def _check(
    adapter: ModelAdapter,
    task: Task,
    seed: int,
    config: ExperimentConfig,
    saved: TaskVector,
    path: Path,
    tolerance: Tolerance,
) -> VectorCheck:
    again, sampling_agrees = rederive(adapter, task, seed, config, saved)
    new, old = again.vectors.float(), saved.vectors.float()  # [layers, hidden]
    same_shape = new.shape == old.shape
    diff = (new - old) if same_shape else torch.full((1, 1), float("inf"))
    rel_l2 = (diff.norm(dim=-1) / old.norm(dim=-1).clamp_min(1e-12)).max().item() if same_shape else math.inf
    return VectorCheck(
        task=task.name,
        seed=seed,
        spec=config.spec,
        path=path,
        equal=same_shape and torch.equal(again.vectors, saved.vectors),
        close=rel_l2 <= tolerance.rel_l2,
        max_abs_diff=diff.abs().max().item(),
        rel_l2=rel_l2,
        prompts_rebuilt=[s.digest for s in again.meta.sources] == [s.digest for s in saved.meta.sources],
        sampling_agrees=sampling_agrees,
    )


def _item(task: Task, shown: Shown | None, saved: TaskVector) -> Item:
    """The item a record names, checked against the task (split, index, id, text and label)."""
    where = f"{saved.meta.task} seed {saved.meta.seed}"
    if shown is None:
        raise VectorFileError(f"{where}: an ICL prompt of the vector records no query; re-run the task")
    split = task.split(shown.split)
    item = split[shown.index] if 0 <= shown.index < len(split) else None
    if (
        item is None
        or (item.id, item.input) != (shown.id, shown.input)
        or shown.label not in ("", item.label)
    ):
        found = "nothing" if item is None else f"{item.id!r} ({item.input} -> {item.label})"
        raise TaskFileError(
            f"{where}: the vector records {shown.split}[{shown.index}] = {shown.id!r} ({shown.input}), "
            f"but task {task.name!r} has {found} there"
        )
    return item


def _given(task_files: Sequence[str | Path], folders: Sequence[RunFolder]) -> dict[str, Task]:
    """The tasks of ``--task-file`` by name; one that none of ``folders`` ran is refused."""
    given = {task.name: task for task in (load_task(str(path)) for path in task_files)}
    ran = {name for folder in folders for name in _run_config(folder).get("tasks", {})}
    unknown = sorted(set(given) - ran)
    if unknown:
        where = folders[0].root if len(folders) == 1 else f"the {len(folders)} runs"
        raise TaskFileError(
            f"--task-file gives task(s) {unknown}, which {where} did not run (tasks: {sorted(ran)})"
        )
    return given


def _inputs(folder: RunFolder, given: Mapping[str, Task]):
    """What a re-derivation needs from a folder and the task files, checked: the recorded config,
    the options, the tasks (their fingerprints) and pictures, and the saved vectors."""
    recorded = _run_config(folder)
    config = ExperimentConfig.create(**recorded["experiment"])
    tasks = _tasks(folder, recorded, config, given)
    if config.needs_images:
        _check_pictures(folder, tasks, config, recorded)
    vectors = {(t.name, s): _saved_vector(folder, t, config, s) for t in tasks for s in config.seeds}
    return recorded, config, tasks, vectors


def _run_config(folder: RunFolder) -> dict:
    if folder.kind() != "run":
        raise folder.not_a_run()
    return folder.config()


def _tasks(
    folder: RunFolder, recorded: dict, config: ExperimentConfig, given: Mapping[str, Task]
) -> list[Task]:
    """The run's tasks, read again (``given`` ones as given), each refused if its fingerprint is
    not the recorded one."""
    prints: Mapping[str, dict] = recorded.get("tasks", {})
    if len(prints) != len(config.tasks):
        raise ConfigError(f"{folder.root}/config.json does not record a fingerprint for each of its tasks")
    tasks = []
    for (name, info), entry in zip(prints.items(), config.tasks, strict=True):
        task = given.get(name) or _reload(name, info.get("source", ""), entry, folder)
        if task.fingerprint() != info.get("fingerprint"):
            raise TaskFileError(
                f"task {name!r}: {task.source or name} has fingerprint {task.fingerprint()}, but "
                f"{folder.root} was computed from {info.get('fingerprint')}; the task data changed, so "
                "the run cannot be re-derived from it (restore the file, or give the run's own with "
                "--task-file)"
            )
        tasks.append(task)
    return tasks


def _reload(name: str, source: str, entry: str, folder: RunFolder) -> Task:
    """A task as the run named it: a built-in by name (the installed one), else its recorded file,
    else the path the run was given (a file named like a built-in task is a file)."""
    if canonical_task_name(entry) in BUILTIN_TASKS:
        return load_task(entry)
    for place in (source, entry):
        if place and " + " not in place and Path(place).exists():
            return load_task(place)
    raise TaskFileError(
        f"task {name!r} of {folder.root}: its file {source or entry} is not there; give its place "
        "with --task-file"
    )


def _check_pictures(folder: RunFolder, tasks: list[Task], config: ExperimentConfig, recorded: dict) -> None:
    hashes = check_images(tasks, config.style)
    for task in tasks:
        then = recorded.get("task_images", {}).get(task.name)
        if then is not None and hashes[task.name] != then:
            raise TaskFileError(
                f"task {task.name!r}: its pictures (style {config.style!r}) hash to {hashes[task.name]}, "
                f"but {folder.root} was computed from {then}; the pictures changed, so the run cannot "
                "be re-derived from them"
            )


def _saved_vector(folder: RunFolder, task: Task, config: ExperimentConfig, seed: int) -> TaskVector | str:
    """The saved vector, or why its file is damaged (a finding of the verification, not a refusal:
    a vector that is missing or records no sources is one)."""
    path = folder.vector_path(task.name, config.spec, seed)
    if not path.is_file():
        raise VectorFileError(
            f"{folder.root} has no vector for {task.name} seed {seed} ({path.name}); finish the run first"
        )
    try:
        vector = TaskVector.load(path)
    except VectorFileError as damaged:
        return str(damaged)
    if not vector.meta.sources:
        raise VectorFileError(
            f"{path} records no prompt sources (saved before taskvec kept them, or by extract() "
            "without sources); it cannot be re-derived from its folder: run it again into a new folder"
        )
    unit = folder.load_unit(task.name, seed)
    identity = unit.get("run_identity") if unit else None
    differences = not_its_place(vector, task, seed, config, identity or vector.meta.run_identity)
    if differences:  # its own record would re-derive it, so only its metadata tells
        return (  # which of the two changed, the vector's record or the folder's, it cannot tell
            f"{path} holds another vector than its place's ({'; '.join(differences)}; the vector's "
            f"record first, then the place's, from its file name and {folder.config_path.name}): the "
            f"vector was copied from another slot or run, or {folder.config_path.name} was edited; run "
            "the command again into a new folder"
        )
    return vector


def _model_name(recorded: dict) -> str:
    """The model the vectors were extracted from: the run's own, or its vector model (LLM -> VLM)."""
    model, source = recorded.get("model", {}), recorded.get("vector_model", {})
    if not source or source == model:
        return recorded["experiment"]["model"]
    return source["name"]  # what load_model was given: a named model, hub id or folder


def _run_dtype(recorded: dict) -> str:
    """The dtype the vectors were computed in (their numerics' first part), for loading: any
    floating dtype a run took (``float64`` too), else float32."""
    numerics = recorded.get("vector_model", recorded.get("model", {})).get("numerics") or "float32"
    dtype = numerics.split("+")[0]
    try:
        LoadOptions(dtype=dtype)
    except TaskvecError:
        return "float32"
    return dtype


def recorded_dtype(root: str | Path) -> str:
    """The dtype the (first) run of ``root`` computed in: what ``taskvec verify`` loads a model in
    when told a device or another model but no dtype."""
    return _run_dtype(_run_config(RunFolder(run_folders(root)[0])))


def _weights(fingerprint: str) -> str:
    """The weights part of a saved fingerprint (``<weights>@<numerics>``, ``ModelAdapter.fingerprint``)."""
    return fingerprint.partition("@")[0]


def _check_weights(folder: RunFolder, adapter: ModelAdapter, vectors) -> bool:
    """Refuse other weights; return whether the numerics are the run's too."""
    same = True
    for vector in vectors:
        if _weights(vector.meta.model_fingerprint) != adapter.weights_fingerprint:
            raise ModelSpecError(
                f"{folder.root}: its vectors come from {vector.meta.model} "
                f"(weights {_weights(vector.meta.model_fingerprint)}), but {adapter.name} has weights "
                f"{adapter.weights_fingerprint}; re-derive with the run's model"
            )
        same = same and vector.meta.model_fingerprint == adapter.fingerprint
    return same


__all__ = [
    "FLOAT32",
    "OTHER_NUMERICS",
    "Tolerance",
    "VectorCheck",
    "Verification",
    "rederive",
    "run_folders",
    "verify_run",
    "verify_runs",
]
