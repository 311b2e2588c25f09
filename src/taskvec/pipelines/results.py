"""A run's results as other tools read them: ``results.json``, a tidy CSV, ``load_run``.

``results.json`` holds what a run computed and what it depends on (the resolved config, versions,
the layer selection and the layer each task was read at, per-task metrics with mean / std / n over
seeds, each method's answer diversity and collapse flag), never a time or a duration (those are
in ``status.json``), so equal runs give equal files. ``tables/results_long.csv`` is
the same numbers and the layer sweeps in long form, one value a row::

    task, seed, split, method, metric, layer, value

``split`` is ``test`` (the reported numbers; xPatch at the task's chosen layer), ``val_sweep`` or
``test_sweep`` (xPatch at every swept layer); ``seed`` is empty on ``average`` rows of no seed.
``load_run(folder)`` reads that table back as a pandas frame (``what="predictions"``: the
per-item rows of ``predictions.jsonl``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pandas as pd

from taskvec.errors import ConfigError
from taskvec.evaluation.metrics import METRICS
from taskvec.evaluation.result import RunResult
from taskvec.evaluation.scoring import answer_diversity
from taskvec.storage.run_folder import (
    COMPLETE,
    RUNNING,
    RunFolder,
    folders_of_kind,
    folders_starting,
    runs_under,
    seal_holds,
    sealed,
    text_checksum,
    write_atomic,
)
from taskvec.tasks.task import Task

if TYPE_CHECKING:  # a type only: listing runs (``taskvec runs``) needs no torch
    from taskvec.evaluation.protocol import ExperimentConfig

RESULTS_FILE = "results.json"
PREDICTIONS_FILE = "predictions.jsonl"
TIDY_TABLE = "results_long"
TIDY_PATH = f"tables/{TIDY_TABLE}.csv"
TIDY_COLUMNS = ["task", "seed", "split", "method", "metric", "layer", "value"]
#: results.json's (and a unit's) list of the ``ResultWarning``s said while computing it, where any were
WARNINGS = "warnings"
#: ``style`` of the rows of a task whose pictures shown are all its own image files
OWN_FILES = "own files"
T = TypeVar("T")


def _layer_of(layers: int | Mapping[str, int], task: str) -> int:
    return layers if isinstance(layers, int) else int(layers[task])


def with_run_columns(
    predictions: pd.DataFrame,
    config: ExperimentConfig,
    layers: int | Mapping[str, int],
    model: str,
    tasks: Sequence[Task],
) -> pd.DataFrame:
    """``predictions`` with the run's model (the name of the model that answered), spec, query and
    style on every row, and the layer an xPatch answer was read at (``layers``: one for every task,
    or per task; none for the methods that patch nothing). ``style`` says which pictures the run
    showed of the row's task (``tasks``): the style the image suite drew them in, ``OWN_FILES``
    where they are all the task's own image files, empty where none is shown (text queries and
    examples)."""
    frame = predictions.copy()
    frame["model"] = model
    frame["spec"] = config.spec
    frame["query"] = config.query
    shown = {t.name: (config.shown_style(t) or OWN_FILES) if config.needs_images else None for t in tasks}
    frame["style"] = pd.Series([shown[task] for task in frame["task"]], index=frame.index, dtype=object)
    frame["layer"] = pd.Series(
        [
            _layer_of(layers, task) if method == "xpatch" else None
            for task, method in zip(frame["task"], frame["method"], strict=True)
        ],
        index=frame.index,
        dtype=object,
    )
    return frame


def canonical_layers(predictions: pd.DataFrame) -> pd.DataFrame:
    """Predictions read back from ``predictions.jsonl`` as ``with_run_columns`` made them: the
    layer an int or None (JSON readers make the column float with NaN)."""
    if "layer" not in predictions.columns:
        return predictions
    frame = predictions.copy()
    frame["layer"] = pd.Series(
        [None if pd.isna(v) else int(v) for v in frame["layer"]], index=frame.index, dtype=object
    )
    for column in ("style",):
        if column in frame.columns:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def tidy_results(
    predictions: pd.DataFrame,
    val_scores: pd.DataFrame,
    test_scores: pd.DataFrame,
    layers: int | Mapping[str, int],
) -> pd.DataFrame:
    """Every number of a run in long form (see the module docstring), in a stable order."""
    rows = []
    for metric in METRICS:
        if metric not in predictions.columns:
            continue
        scored = predictions.dropna(subset=[metric])
        per_seed = scored.assign(value=scored[metric].astype(float)).groupby(["task", "seed", "method"]).value
        for (task, seed, method), value in per_seed.mean().items():
            layer = _layer_of(layers, task) if method == "xpatch" else None
            rows.append((task, seed, "test", method, metric, layer, value))
    for split, scores in (("val_sweep", val_scores), ("test_sweep", test_scores)):
        if scores.empty:
            continue
        means = scores.assign(value=scores.correct.astype(float)).groupby(["task", "seed", "metric", "layer"])
        for (task, seed, metric, swept), value in means.value.mean().items():
            rows.append((task, seed, split, "xpatch", metric, int(swept), value))
    frame = pd.DataFrame.from_records(rows, columns=TIDY_COLUMNS)
    frame["seed"] = frame["seed"].astype("Int64")
    frame["layer"] = frame["layer"].astype("Int64")
    frame["value"] = frame["value"].round(6)
    order = ["split", "task", "method", "metric", "layer", "seed"]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def metric_summary(predictions: pd.DataFrame) -> dict:
    """``{task: {method: {metric: {mean, std, n}}}}`` over seeds (per-seed accuracy over items;
    ``std`` with ddof 0, as the summary tables, null for one seed; ``n`` seeds), with an
    ``average`` task (the mean over tasks of each seed)."""
    summary: dict = {}
    for metric in METRICS:
        if metric not in predictions.columns:
            continue
        scored = predictions.dropna(subset=[metric])
        if scored.empty:
            continue
        values = scored.assign(value=scored[metric].astype(float))
        per_seed = values.groupby(["task", "method", "seed"]).value.mean()
        average = per_seed.groupby(["method", "seed"]).mean()
        groups = [*((task, per_seed.xs(task)) for task in dict.fromkeys(scored.task)), ("average", average)]
        for task, by_method in groups:
            for method, values in by_method.groupby(level="method"):
                entry = summary.setdefault(task, {}).setdefault(method, {})
                entry[metric] = {
                    "mean": round(float(values.mean()), 6),
                    "std": round(float(values.std(ddof=0)), 6) if values.size > 1 else None,
                    "n": int(values.size),
                }
    return summary


def diversity_summary(predictions: pd.DataFrame) -> dict:
    """``{task: {method: {items, distinct, top_share, top_answer, label_share, collapsed}}}``
    (``scoring.answer_diversity``; ``collapsed`` is null where the rule cannot judge)."""
    summary: dict = {}
    for (task, method), row in answer_diversity(predictions).iterrows():
        entry = {k: (round(float(v), 6) if isinstance(v, float) else v) for k, v in row.items()}
        entry["items"] = int(row["items"])
        entry["collapsed"] = None if pd.isna(row["collapsed"]) else bool(row["collapsed"])
        summary.setdefault(task, {})[method] = entry
    return summary


def write_predictions(root: Path, predictions: pd.DataFrame) -> None:
    """``predictions.jsonl``: one row per (task, seed, item, method), every metric and the run's
    columns (``with_run_columns``)."""
    write_atomic(root / PREDICTIONS_FILE, _predictions_text(predictions))


def _predictions_text(predictions: pd.DataFrame) -> str:
    rows = (json.dumps(r, ensure_ascii=False, default=str) for r in predictions.to_dict("records"))
    return "\n".join(rows) + "\n"


def prediction_rows(root: Path) -> tuple[list[dict], int]:
    """The rows of ``predictions.jsonl`` that parse, and how many lines do not (a file cut
    mid-line, or edited): a read-back takes what it can check and rebuilds the rest."""
    rows, damaged = [], 0
    path = root / PREDICTIONS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    except UnicodeDecodeError:
        return [], 1
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            damaged += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            damaged += 1
    return rows, damaged


def read_predictions(root: Path) -> pd.DataFrame:
    """``predictions.jsonl`` back as ``write_predictions`` was given it (``canonical_layers``)."""
    return canonical_layers(pd.read_json(root / PREDICTIONS_FILE, lines=True, dtype=False))


def write_results(
    root: Path,
    resolved: dict,
    predictions: pd.DataFrame,
    val_scores: pd.DataFrame,
    test_scores: pd.DataFrame,
    layer: int,
    selection_metric: str,
    task_layers: Mapping[str, int] | None = None,
    warnings: Sequence[str] | None = (),
) -> None:
    """``results.json`` and ``tables/results_long.csv`` of a finished run (``resolved``: the
    run's config.json content; ``layer``: the best of the mean validation curve; ``task_layers``:
    the layer each task's xPatch was read at, by default ``layer`` for all; ``warnings``: the
    ``ResultWarning``s said while computing it)."""
    scores = (val_scores, test_scores, layer, selection_metric, task_layers, warnings)
    files = derived_files(root, resolved, predictions, *scores)
    for path, text in files.items():
        if path.name != PREDICTIONS_FILE:
            write_atomic(path, text)


def derived_files(
    root: Path,
    resolved: dict,
    predictions: pd.DataFrame,
    val_scores: pd.DataFrame,
    test_scores: pd.DataFrame,
    layer: int,
    selection_metric: str,
    task_layers: Mapping[str, int] | None = None,
    warnings: Sequence[str] | None = (),
) -> dict[Path, str]:
    """The text of every file a finished run derives from its units and test answers
    (predictions.jsonl, results.json, the long CSV), as ``write_predictions`` and
    ``write_results`` write them: a read-back compares the folder's files with these."""
    tasks = list(dict.fromkeys(predictions.task))
    task_layers = {t: int(task_layers[t]) if task_layers else int(layer) for t in tasks}
    results = {
        "config": resolved,
        "versions": resolved.get("versions", {}),
        "layer_selection": resolved.get("experiment", {}).get("layer_selection", "shared"),
        "chosen_layer": int(layer),
        "chosen_layers": task_layers,
        "selection_metric": selection_metric,
        "results": metric_summary(predictions),
        "answer_diversity": diversity_summary(predictions),
    }
    if warnings is not None:  # None: a run of a taskvec that recorded none (its file reads back unchanged)
        results[WARNINGS] = list(warnings)
    tidy = tidy_results(predictions, val_scores, test_scores, task_layers).to_csv(index=False)
    rows = _predictions_text(predictions)
    # what load_run reads beside results.json: a file cut at a line boundary still parses
    results["files"] = {PREDICTIONS_FILE: text_checksum(rows), TIDY_PATH: text_checksum(tidy)}
    # what a read-back takes from predictions.jsonl, which no unit holds: checked row by row
    results["xpatch_answers"] = xpatch_answers_checksum(json.loads(line) for line in rows.splitlines())
    results = sealed(results)
    return {
        root / PREDICTIONS_FILE: rows,
        root / RESULTS_FILE: json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n",
        root / TIDY_PATH: tidy,
    }


def xpatch_answers_checksum(rows: Iterable[dict]) -> str:
    """The checksum of the xPatch rows among ``rows`` of predictions.jsonl (their task, seed, item,
    layer and answer, in any order): a read-back takes these answers from the file, so results.json
    records them to check them by, also where other rows of the file were lost."""
    fields = ("task", "seed", "item", "layer", "prediction", "answer")
    kept = sorted(
        json.dumps([row.get(field) for field in fields], ensure_ascii=False, default=str)
        for row in rows
        if row.get("method") == "xpatch"
    )
    return text_checksum("\n".join(kept))


def recorded_answers_check(root: Path, rows: list[dict]) -> str:
    """Why the xPatch ``rows`` read from a finished run's predictions.jsonl cannot be trusted
    (edited, or nothing left to check them by), or "" where results.json vouches for them (an
    older taskvec's results.json records no checksum: its rows are taken as before)."""
    try:
        results = json.loads((root / RESULTS_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        results = None
    if not isinstance(results, dict) or not seal_holds(results):
        return f"{RESULTS_FILE}, which vouches for {PREDICTIONS_FILE}'s xPatch answers, is missing or damaged"
    recorded = results.get("xpatch_answers")
    if recorded is None:
        older = (results.get("files") or {}).get(PREDICTIONS_FILE)
        text = _text(root / PREDICTIONS_FILE)
        if older is None or (text is not None and text_checksum(text) == older):
            return ""
    elif recorded == xpatch_answers_checksum(rows):
        return ""
    return f"{PREDICTIONS_FILE}'s xPatch answers are not those {RESULTS_FILE} records (edited or damaged)"


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _check_recorded(root: Path, results: dict, name: str) -> None:
    """A derived file whose bytes are not those results.json records (a copy cut short at a
    line boundary, an edit): refused in one line before it is read (an older results.json
    records none)."""
    recorded = (results.get("files") or {}).get(name)
    path = root / name
    if (
        recorded
        and path.is_file()
        and text_checksum(path.read_bytes().decode("utf-8", "replace")) != recorded
    ):
        raise ConfigError(f"{path} is damaged (not the file results.json records): {_REWRITE}")


def load_run(folder: str | Path | RunFolder | RunResult, what: str = "results") -> pd.DataFrame:
    """A ``taskvec run`` folder as one pandas frame (the folder's path, a ``RunFolder``, or the
    ``RunResult`` ``taskvec.evaluate`` returned).

    ``what="results"``: every number in long form (``task, seed, split, method, metric, layer,
    value``); ``what="predictions"``: one row per (task, seed, item, method). The frame's
    ``attrs`` hold the run's ``config``, ``chosen_layer`` (the best of the mean validation curve),
    ``chosen_layers`` (the layer each task's xPatch was read at), ``layer_selection``,
    ``selection_metric`` and ``warnings`` (what was said about its inputs while it ran, from
    results.json)::

        >>> frame = taskvec.load_run("runs/smollm2-135m-text-icl-text-spaced-1a2b3c")
        >>> frame.query("split == 'test' and metric == 'paper'").groupby("method").value.mean()
    """
    if what not in ("results", "predictions"):
        raise ConfigError(f"load_run: what must be 'results' or 'predictions', not {what!r}")
    if isinstance(folder, RunResult):  # what taskvec.evaluate returned
        folder = folder.folder
    root = folder.root if isinstance(folder, RunFolder) else Path(folder)
    run = RunFolder(root)
    if run.kind() != "run":
        raise run.not_a_run()
    _refuse_unfinished(run)
    results = checked_results(run)
    _check_recorded(root, results, TIDY_PATH if what == "results" else PREDICTIONS_FILE)
    if what == "results":
        tidy = root / TIDY_PATH
        frame = _derived(
            tidy,
            lambda: pd.read_csv(
                tidy,
                dtype={"seed": "Int64", "layer": "Int64"},
                keep_default_na=False,  # a task named "NA" stays a name
                na_values={"seed": [""], "layer": [""]},
            ),
        )
    else:
        frame = _derived(root / PREDICTIONS_FILE, lambda: read_predictions(root))
    frame.attrs.update(
        config=results["config"],
        chosen_layer=results["chosen_layer"],
        chosen_layers=results.get("chosen_layers", {}),
        layer_selection=results.get("layer_selection", "shared"),
        selection_metric=results["selection_metric"],
        warnings=list(results.get(WARNINGS, [])),
    )
    return frame


#: what a run folder's state says of it to a reader of its results (``RunFolder.state``), and
#: what the reader can do (a command that is writing it refuses the same command until it ends)
_UNFINISHED = {
    RUNNING: ("a taskvec command is computing it now", "wait until it finishes (taskvec runs: its state)"),
    "stopped": ("it was stopped part-way (killed or interrupted)", "run its command again to complete it"),
    "": ("it has no status.json", "run its command again to complete it"),
}


def unfinished(run: RunFolder) -> str | None:
    """Why a run folder's results are not yet its run's, and what to do (None where it is
    complete): running, stopped part-way, or never started."""
    state = run.state()
    if state == COMPLETE:
        return None
    said, cure = _UNFINISHED.get(state, (f"its status says {state!r}", "run its command again"))
    return f"{run.root} is a run that has not finished ({said}): {cure}"


def _refuse_unfinished(run: RunFolder) -> None:
    """A folder whose results are not its run's, complete: one being extended with more seeds
    still holds the fewer seeds' results.json, and a stopped one may hold none."""
    if (why := unfinished(run)) is not None:
        raise ConfigError(why)
    if not run.path(RESULTS_FILE).is_file():
        raise ConfigError(
            f"{run.root} is a complete run that holds no results.json (one an older taskvec wrote): run "
            "its command again to write it"
        )


def checked_results(run: RunFolder) -> dict:
    """A complete run folder's results.json, refused in one line where it is damaged, edited or of
    other seeds than its config.json asks: what a reader takes a run's chosen layers from (its
    status.json records them too, unchecked)."""
    path = run.path(RESULTS_FILE)
    results = _derived(path, lambda: json.loads(path.read_text(encoding="utf-8")))
    needed = {"chosen_layer", "selection_metric"}
    if not isinstance(results, dict) or not isinstance(results.get("config"), dict) or needed - set(results):
        raise ConfigError(f"{path} is damaged (not a run's results): {_REWRITE}")
    if not seal_holds(results):
        raise ConfigError(f"{path} is damaged (edited since its run wrote it): {_REWRITE}")
    asked = run.config().get("experiment", {}).get("seeds")
    held = results["config"].get("experiment", {}).get("seeds")
    if asked != held:
        raise ConfigError(
            f"{path} holds seeds {held}, while {run.config_path.name} asks seeds {asked}: run its command "
            "again to complete it"
        )
    return results


#: what to do about a damaged or missing file a run derives from its units
_REWRITE = "run the folder's command again to rewrite it from its units"


def _derived(path: Path, read: Callable[[], T]) -> T:
    """``read()`` of a file a run derives from its units; missing or damaged, one line that names
    it and says how to repair it."""
    if not path.is_file():
        raise ConfigError(f"{path} is missing: {_REWRITE}")
    try:
        return read()
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"{path} is damaged ({reason}): {_REWRITE}") from None


#: the methods ``list_runs`` shows a run's test score of, in its column order
LISTED_METHODS = ("no_context", "majority", "label_prior", "xbase", "xpatch")


def list_runs(root: str | Path = "runs", metric: str = "paper") -> pd.DataFrame:
    """Every ``taskvec run`` folder under ``root`` (a reproduction's runs too), one row each:
    where it is (``run``, relative to ``root``), its ``state`` (complete, running, stopped: the
    same command resumes it; ``damaged (<file>)`` where one of its files does not parse), what it
    ran (model, ``vlm <- llm`` where the vectors came from another, spec, query, style, tasks,
    seeds, layer selection) and, once complete, the layer xPatch was read at, how many
    ``warnings`` it recorded of its inputs (``load_run(...).attrs["warnings"]`` says them; missing
    for a run of a taskvec that recorded none) and each
    method's test score by ``metric``, the mean over tasks of each task's mean over seeds (as the
    tables' ``average``)::

        >>> taskvec.list_runs("runs").query("state == 'complete'").sort_values("xpatch")
    """
    if metric not in METRICS:
        raise ConfigError(f"list_runs: unknown metric {metric!r}; one of {list(METRICS)}")
    root = Path(root)
    if not root.is_dir():
        found = "a file, not a folder" if root.exists() else "no such folder"
        raise ConfigError(f"{root}: {found} (run folders are written under runs/ by default)")
    rows = [_listed(RunFolder(path), root, metric) for path in runs_under(root, damaged=True)]
    frame = pd.DataFrame(rows, columns=[*_LISTED_COLUMNS, *LISTED_METHODS])
    return frame.astype({"warnings": "Int64"})  # a count; missing where unknown (unfinished, older)


#: a reproduction's or an analysis's state as ``taskvec runs`` says it under its table
_WORK_STATES = {
    COMPLETE: "complete",
    RUNNING: "running (a taskvec command is computing it)",
    "stopped": "stopped part-way (killed or interrupted): the same command resumes it",
    "": "not started (no status.json)",
}


def list_other_work(root: str | Path = "runs") -> list[tuple[str, str, str]]:
    """The reproductions and analyses under ``root`` (or ``root`` itself), which ``list_runs``
    does not list (they are not runs): ``(folder, kind, state)`` each, the folder relative to
    ``root``. A reproduction whose runs are all complete may still be computing (or stopped in) its
    later stages: its runs alone did not say. Then the folders a command has taken but written
    nothing in yet (kind ``new``): it is loading its model, and the folder has no config.json to
    say what it will be."""
    root = Path(root)
    listed = []
    for path in folders_of_kind(root, ("reproduction", "analysis")):
        folder = RunFolder(path)
        try:
            state = folder.state()  # once: each look tries the folder's lock
            state = _WORK_STATES.get(state, state)
        except ConfigError:  # listed as damaged, beside the others, as list_runs lists a run
            state = f"damaged ({folder.status_path.name} does not parse)"
        listed.append((_where(path, root), folder.kind(), state))
    for path in folders_starting(root):
        listed.append((_where(path, root), "new", _STARTING))
    return listed


#: the state of a folder a command holds before writing anything there (``list_other_work``)
_STARTING = "a taskvec command is starting in it (loading its model; nothing written yet)"


def _where(path: Path, root: Path) -> str:
    """A listed folder as shown: relative to the root listed, the root by its name."""
    return str(path.relative_to(root)) if path != root else path.name


_LISTED_COLUMNS = [
    *("run", "state", "model", "spec", "query", "template", "style"),
    *("tasks", "seeds", "selection", "layer", "warnings"),
]


def _template_name(recorded) -> str | None:
    """A run's template by name (the record holds its fields; an older one, the name alone)."""
    return recorded.get("name") if isinstance(recorded, dict) else recorded


def _listed(folder: RunFolder, root: Path, metric: str) -> dict:
    """One run folder's row of ``list_runs``; a folder one of whose files does not parse is
    listed as ``damaged (<file>)`` with what could be read of it, never dropped or fatal."""
    row: dict = dict.fromkeys([*_LISTED_COLUMNS, *LISTED_METHODS])
    row["run"] = _where(folder.root, root)
    damaged = "damaged ({})"
    try:
        recorded = folder.config()
    except ConfigError:
        return {**row, "state": damaged.format(folder.config_path.name)}
    experiment = recorded.get("experiment", {})
    row.update(
        {key: experiment.get(key) for key in ("model", "spec", "query", "style")},
        tasks=", ".join(recorded.get("tasks") or experiment.get("tasks", [])),  # names, not paths
        seeds=", ".join(str(seed) for seed in experiment.get("seeds", [])),
        selection=experiment.get("layer_selection", "shared"),
        template=_template_name(experiment.get("template")),
    )
    numerics = recorded.get("model", {}).get("numerics")
    if numerics and numerics != "float32":  # a bfloat16 run is another run of the same model
        row["model"] = f"{row['model']} ({numerics})"
    vectors_from = recorded.get("vector_model", {}).get("name")
    if vectors_from and vectors_from != recorded.get("model", {}).get("name"):  # LLM -> VLM transfer
        row["model"] = f"{row['model']} <- {vectors_from}"
    try:
        row["state"] = folder.state()
    except ConfigError:
        return {**row, "state": damaged.format(folder.status_path.name)}
    results_path = folder.path(RESULTS_FILE)
    if row["state"] != "complete" or not results_path.is_file():
        return row
    try:
        results = json.loads(results_path.read_text(encoding="utf-8"))
        if not seal_holds(results):
            return {**row, "state": damaged.format(RESULTS_FILE)}
        layers = set(results.get("chosen_layers", {}).values()) or {results["chosen_layer"]}
        scores = {
            method: [task[method][metric]["mean"] for task in results["results"].values() if method in task]
            for method in LISTED_METHODS
        }
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        return {**row, "state": damaged.format(RESULTS_FILE)}
    row["layer"] = str(layers.pop()) if len(layers) == 1 else "per task"
    row["warnings"] = len(results[WARNINGS]) if isinstance(results.get(WARNINGS), list) else None
    for method, values in scores.items():
        row[method] = sum(values) / len(values) if values else None  # rounded once, where shown
    return row


__all__ = [
    "checked_results",
    "diversity_summary",
    "list_runs",
    "load_run",
    "metric_summary",
    "OWN_FILES",
    "tidy_results",
    "with_run_columns",
    "write_results",
]
