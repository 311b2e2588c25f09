"""Shared by the reliability tests: small task files, the base options and folder checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskvec.errors import FolderBusyError
from taskvec.storage.run_folder import RunFolder
from taskvec.tasks.registry import builtin_task_path

#: options every bad-input case starts from (one small built-in task, one seed, one layer)
BASE = dict(tasks=["food_color"], seeds=[1], template="spaced", layers=[20])
#: options of the tiny real runs (their task is a ``write_tiny_task`` file): one seed, one layer,
#: two answer tokens, so that a whole run costs a few forward passes
TINY = dict(seeds=[1], template="spaced", layers=[20], answer_tokens=2)


def synthetic_items(n: int, **fields) -> list[dict]:
    return [{"id": f"i{k}", "input": f"thing {k}", "output": f"label {k}", **fields} for k in range(n)]


def write_task(folder: Path, name: str = "toy", **fields) -> Path:
    """A task file of 6 + 2 synthetic items; ``fields`` replace any part of it."""
    items = synthetic_items(8)
    task = {"name": name, "instruction": "The label:", "val": items[:6], "test": items[6:], **fields}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(task, indent=1))
    return path


def write_tiny_task(folder: Path, name: str = "tiny_food", val: int = 7, test: int = 3, **fields) -> Path:
    """The first ``val`` + ``test`` items of food_color as a task of their own: a real task small
    enough that a whole run (extraction, sweep, xBase, report) takes a few seconds."""
    source = json.loads(builtin_task_path("food_color").read_text())
    return write_task(
        folder,
        name,
        instruction=source["instruction"],
        val=source["val"][:val],
        test=source["test"][:test],
        **fields,
    )


def snapshot(path: Path) -> dict[str, bytes] | bytes | None:
    """Every file under ``path`` with its bytes (a file's bytes; None if nothing is there)."""
    if not path.exists():
        return None
    if path.is_file():
        return path.read_bytes()
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def assert_no_success(out: Path) -> None:
    """No folder at ``out`` may claim a finished run: neither status 'complete' nor a report."""
    if not out.is_dir():
        return
    status = RunFolder(out).status_path
    if status.is_file():
        assert json.loads(status.read_text()).get("state") != "complete", f"{out} claims success"
    assert not (out / "report.md").exists(), f"{out} has a report"


def counted_units(monkeypatch, stop_after: int | None = None) -> list[tuple[str, int]]:
    """The (task, seed) units a run computes, in order, as ``run_unit`` is called; with
    ``stop_after``, the run is killed (``KeyboardInterrupt``) once that many are finished."""
    from taskvec.pipelines import evaluate as evaluate_module

    real, computed = evaluate_module.run_unit, []

    def run_unit(adapter, task, seed, *rest):
        if stop_after is not None and len(computed) == stop_after:
            raise KeyboardInterrupt
        computed.append((task.name, seed))
        return real(adapter, task, seed, *rest)

    monkeypatch.setattr(evaluate_module, "run_unit", run_unit)
    return computed


def loads_then(second, loaded) -> tuple[list, object]:
    """A ``load_model`` that, on its first call (the first command, still loading), starts
    ``second`` (the same command again) and sees it refused as busy, then returns ``loaded()``;
    every call is counted."""
    calls: list[str] = []

    def load(name, _options=None):
        calls.append(name)
        if len(calls) == 1:
            with pytest.raises(FolderBusyError, match="in use by another taskvec command"):
                second()
        return loaded()

    return calls, load


def no_model(*_args, **_kwargs):
    """A ``load_model`` for commands that must refuse before any model loads."""
    raise AssertionError("a model was loaded")


def rewrite_results(run: Path, **changes) -> None:
    """``run``'s results.json with ``changes``, checksummed as a run writes it: a run that chose
    otherwise (an extended run's new layer, a per-task selection), not a hand edit."""
    from taskvec.storage.run_folder import SEAL, sealed

    path = Path(run) / "results.json"
    results = {key: value for key, value in json.loads(path.read_text()).items() if key != SEAL}
    path.write_text(json.dumps(sealed({**results, **changes})))
