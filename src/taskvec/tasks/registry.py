"""The built-in tasks (shipped as data files) and lookup of user task files."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from taskvec.errors import TaskFileError
from taskvec.tasks.task import Task, load_rows_task, load_task_file

BUILTIN_TASKS: tuple[str, ...] = (
    "country_capital",
    "country_currency",
    "animal_latin",
    "animal_young",
    "food_color",
    "food_flavor",
)


#: the official code's task names (``country-capital``), accepted for the built-in tasks
TASK_ALIASES: dict[str, str] = {name.replace("_", "-"): name for name in BUILTIN_TASKS}


def canonical_task_name(name: str) -> str:
    """The built-in name of an official alias (``country-capital`` -> ``country_capital``);
    anything else as it is."""
    return TASK_ALIASES.get(name, name)


def builtin_task_path(name: str) -> Path:
    return Path(str(resources.files("taskvec.tasks") / "data" / f"{name}.json"))


def load_task(name_or_path: str | Path) -> Task:
    """A built-in task by name (``country_capital``, or the official ``country-capital``) or a task
    file by path: the project's JSON, or rows (CSV, JSONL, the paper's JSON list; see
    docs/task-files.md)."""
    text = canonical_task_name(str(name_or_path))
    if text in BUILTIN_TASKS:
        return load_task_file(builtin_task_path(text))
    path = Path(text)
    suffix = path.suffix.lower()  # UPPER.CSV is a CSV, not JSON
    if suffix in (".csv", ".jsonl"):
        return load_rows_task(path, _builtin_instruction)
    if path.exists() and suffix not in ("", ".json"):  # task.txt was read as JSON: "not valid JSON"
        raise TaskFileError(
            f"{path}: a task file is .json, .jsonl or .csv (docs/task-files.md), not {path.suffix}; "
            "rename it after what it holds"
        )
    if suffix == ".json" or path.exists():
        return load_task_file(path, _builtin_instruction)
    close = difflib.get_close_matches(text, [*BUILTIN_TASKS, *TASK_ALIASES], n=1)
    hint = f" (did you mean {canonical_task_name(close[0])!r}?)" if close else ""
    raise TaskFileError(
        f"unknown task {text!r}{hint}: built-in tasks are {list(BUILTIN_TASKS)}; "
        "otherwise give the path of a task file (.json, .jsonl or .csv; docs/task-files.md)"
    )


def _builtin_instruction(name: str) -> str | None:
    """The instruction of the built-in task ``name`` (or its official alias), if it is one."""
    name = canonical_task_name(name)
    return load_task_file(builtin_task_path(name)).instruction if name in BUILTIN_TASKS else None


def resolve_task_names(names: list[str]) -> list[str]:
    """Expand ``all`` into the six built-in tasks; official names become the built-in ones."""
    resolved: list[str] = []
    for name in names:
        resolved.extend(BUILTIN_TASKS if name == "all" else [canonical_task_name(name)])
    return resolved


def _same_task_key(text: str) -> str:
    """What two ways of naming one task have in common: a built-in's name (``country-capital`` is
    ``country_capital``), a file's resolved path (``t.json``, ``./t.json``, ``/data/t.json``)."""
    name = canonical_task_name(text)
    if name in BUILTIN_TASKS:
        return name
    return str(Path(text).expanduser().resolve())


def _task_references(values: list[str]) -> list[str]:
    """The tasks as typed (a run's identity counts them so, so a folder with its task files moves
    and still resumes), ``all`` as the six built-in tasks (as the command line reads it), none
    named twice in two spellings."""
    if not values:
        raise ValueError("at least one task")
    values = [name for value in values for name in (BUILTIN_TASKS if value == "all" else [value])]
    keys = [_same_task_key(v) for v in values]
    twice = sorted({v for v, key in zip(values, keys, strict=True) if keys.count(key) > 1})
    if twice:
        raise ValueError(f"a task is listed twice: {twice}")
    return values


def _no_task_objects(values: object) -> object:
    """A ``Task`` built in Python has no file a run could record, resume or verify it by: say how
    to give it one (``Task.save``), rather than "Input should be a valid string"."""
    if isinstance(values, list | tuple) and any(isinstance(value, Task) for value in values):
        raise ValueError(
            "a Task object: runs read their tasks from files (to resume and verify them); "
            "write it with task.save('my_task.json') and pass the path"
        )
    return values


#: a list of tasks in a pipeline's options: as typed, none twice (``_task_references``)
TaskReferences = Annotated[list[str], BeforeValidator(_no_task_objects), AfterValidator(_task_references)]


def load_tasks(references: Sequence[str]) -> list[Task]:
    """``load_task`` of each; two tasks of one name are refused: a run keys its results, vectors
    and tables by task name, so one would silently stand for both. An official name counts as its
    built-in task's (a file ``country-capital`` beside ``country_capital``)."""
    tasks = [load_task(reference) for reference in references]
    seen: dict[str, tuple[str, str]] = {}  # canonical name -> (reference, name as the task has it)
    for reference, task in zip(references, tasks, strict=True):
        key = canonical_task_name(task.name)
        if key in seen:
            first, name = seen[key]
            both = f"{name!r} and {task.name!r}, one built-in task's names"
            names = repr(name) if name == task.name else both
            raise TaskFileError(
                f"two tasks are named {names} ({first} and {reference}); a run keys its "
                "results by task name: give one another 'name' (or file name)"
            )
        seen[key] = (reference, task.name)
    return tasks
