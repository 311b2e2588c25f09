"""The built-in tasks (shipped as data files) and lookup of user task files."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from taskvec.errors import TaskFileError
from taskvec.tasks.task import Task, load_task_file

BUILTIN_TASKS: tuple[str, ...] = (
    "country_capital",
    "country_currency",
    "animal_latin",
    "animal_young",
    "food_color",
    "food_flavor",
)


def builtin_task_path(name: str) -> Path:
    return Path(str(resources.files("taskvec.tasks") / "data" / f"{name}.json"))


def load_task(name_or_path: str | Path) -> Task:
    """A built-in task by name (``country_capital``) or a task file by path."""
    text = str(name_or_path)
    if text in BUILTIN_TASKS:
        return load_task_file(builtin_task_path(text))
    path = Path(text)
    if path.suffix == ".json" or path.exists():
        return load_task_file(path)
    raise TaskFileError(
        f"unknown task {text!r}: built-in tasks are {list(BUILTIN_TASKS)}; "
        "otherwise give the path of a task JSON file"
    )


def resolve_task_names(names: list[str]) -> list[str]:
    """Expand ``all`` into the six built-in tasks."""
    resolved: list[str] = []
    for name in names:
        resolved.extend(BUILTIN_TASKS if name == "all" else [name])
    return resolved
