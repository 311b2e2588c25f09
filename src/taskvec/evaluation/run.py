"""``evaluate``: validate everything, run the units (resuming finished ones), select the layer,
score the test split and write the run folder."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from taskvec.errors import ConfigError, TaskFileError
from taskvec.evaluation.protocol import ExperimentConfig, check_task_fits, patched_answers, run_unit
from taskvec.evaluation.scoring import choose_layer, layer_curve, layer_scores, split_predictions
from taskvec.models.adapter import ModelAdapter
from taskvec.models.registry import load_model
from taskvec.report.run_folder import RunFolder
from taskvec.tasks.registry import load_task
from taskvec.tasks.task import Task
from taskvec.vectors.task_vector import TaskVector


@dataclass
class RunResult:
    folder: RunFolder
    best_layer: int
    val_scores: pd.DataFrame
    predictions: pd.DataFrame


def validate_inputs(config: ExperimentConfig) -> list[Task]:
    """Everything that can be checked without the model: tasks, split sizes, images."""
    tasks = [load_task(name) for name in config.tasks]
    for task in tasks:
        check_task_fits(task, config)
    if config.needs_images:
        check_images(tasks, config.style)
    return tasks


def check_images(tasks: list[Task], style: str) -> None:
    """Every item's image must exist (in ``style`` for suite images) and decode fully."""
    from taskvec.prompts.inputs import image_file, open_image

    for task in tasks:
        for item in (*task.val, *task.test):
            open_image(image_file(item, style), what=f"task {task.name!r}: item {item.id!r}")


def check_model_fits(adapter: ModelAdapter, config: ExperimentConfig) -> None:
    for layer in config.layers or []:
        adapter.check_layer(layer)
    if config.needs_images and not adapter.supports_images:
        raise ConfigError(
            f"{adapter.name} is text-only, but spec {config.spec!r} / query {config.query!r} "
            "needs images; use a vision-language model"
        )


def run_identity(config: ExperimentConfig, tasks: list[Task], model_fingerprint: str = "") -> str:
    """What a run folder's results depend on: the config, the task data and the weights."""
    parts = [config.config_hash(), *(t.fingerprint() for t in tasks), model_fingerprint]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def check_labels_tokenize(adapter: ModelAdapter, tasks: list[Task]) -> None:
    """A label the tokenizer turns into nothing can never be scored."""
    for task in tasks:
        for item in (*task.val, *task.test):
            for answer in item.answers:
                if not adapter.text_token_ids(answer):
                    raise TaskFileError(
                        f"task {task.name!r}: item {item.id!r}: answer {answer!r} tokenizes to nothing "
                        f"under {adapter.name}"
                    )


def _versions() -> dict:
    import platform

    import transformers

    import taskvec

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "taskvec": getattr(taskvec, "__version__", ""),
    }


def default_run_dir(config: ExperimentConfig, tasks: list[Task], root: Path = Path("runs")) -> Path:
    name = f"{config.model}-{config.spec}-{config.query}-{config.template.name}-{run_identity(config, tasks)}"
    return root / name.replace("/", "_")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def evaluate(
    config: ExperimentConfig,
    out: str | Path | None = None,
    adapter: ModelAdapter | None = None,
    show_progress: bool = True,
) -> RunResult:
    """Run the paper's protocol for every task and seed of ``config`` into one run folder."""
    started = time.perf_counter()
    tasks = validate_inputs(config)
    folder = RunFolder(out or default_run_dir(config, tasks))
    if adapter is None:
        adapter = load_model(config.model)
    check_model_fits(adapter, config)
    torch.set_grad_enabled(False)
    check_labels_tokenize(adapter, tasks)
    resolved = {
        "experiment": config.model_dump(mode="json"),
        "model": adapter.describe(),
        "tasks": {t.name: {"source": t.source, "fingerprint": t.fingerprint()} for t in tasks},
        "versions": _versions(),
    }
    folder.start(resolved, run_identity(config, tasks, adapter.fingerprint))

    units = []
    pending = [(t, s) for t in tasks for s in config.seeds if folder.load_unit(t.name, s) is None]
    with _progress() as progress:
        bar = progress.add_task(
            "units (task x seed)",
            total=len(tasks) * len(config.seeds),
            completed=len(tasks) * len(config.seeds) - len(pending),
            visible=show_progress,
        )
        for task, seed in pending:
            progress.update(bar, description=f"{task.name} seed {seed}")
            unit, vector = run_unit(adapter, task, seed, config)
            vector.save(folder.vector_path(task.name, config.spec, seed))
            folder.save_unit(unit)
            progress.advance(bar)
    units = [folder.load_unit(t.name, s) for t in tasks for s in config.seeds]

    val_scores = layer_scores(units, "val")
    best = choose_layer(val_scores, config.selection_metric)
    answers = {}
    for task in tasks:
        for seed in config.seeds:
            vector = TaskVector.load(folder.vector_path(task.name, config.spec, seed))
            vector.check_fits(adapter, same_model=True)
            answers[(task.name, seed)] = patched_answers(adapter, task, seed, config, vector, best)
    predictions = split_predictions(units, best, answers)

    from taskvec.report.tables import write_run_outputs

    write_run_outputs(folder, config, val_scores, predictions, best, layer_scores(units, "test"))
    folder.finish(
        best_layer=best, seconds=round(time.perf_counter() - started, 1), peak_rss_mb=_peak_rss_mb()
    )
    return RunResult(folder, best, val_scores, predictions)


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


__all__ = ["RunResult", "default_run_dir", "evaluate", "layer_curve", "validate_inputs"]
