"""The pipelines' progress bars and announcements, on stderr (stdout stays for what a command
prints as its result, which may be piped); ``show=False`` keeps them silent."""

from __future__ import annotations

import os
from datetime import timedelta

from rich.console import Console, ConsoleDimensions
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

#: the width of lines written into a file or a pipe (a job's log): wide enough that no bar or
#: note of the commands wraps
LOG_WIDTH = 200


class LogConsole(Console):
    """A rich console that, writing into a file or a pipe, lays bars out ``LOG_WIDTH`` wide and
    does not wrap what it prints.

    There rich assumes 80 columns: a bar's ``100/100 answers`` wrapped onto a line of its own and
    each note of a run broke mid-sentence in a scheduler's log (a note, one line, is found by grep).
    A terminal, an explicit ``width`` and ``COLUMNS`` keep their say."""

    def __init__(self, *args, width: int | None = None, **options) -> None:
        super().__init__(*args, width=width, **options)
        self._sized = width is not None  # told its width, by the caller or by ``size =``

    def _logged(self) -> bool:
        unsized = not self._sized and not os.environ.get("COLUMNS")
        return unsized and not self.is_terminal and not self.is_jupyter

    def print(self, *objects, soft_wrap: bool | None = None, **options) -> None:
        if soft_wrap is None and self._logged():
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **options)

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return ConsoleDimensions(LOG_WIDTH, size.height) if self._logged() else size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)
        self._sized = True

    @property
    def width(self) -> int:
        return self.size.width

    @width.setter
    def width(self, width: int) -> None:
        Console.width.fset(self, width)
        self._sized = True


#: the one console of the bars and announcements (rich's default console writes to stdout); it
#: looks up ``sys.stderr`` as it writes, so a redirected stderr is followed
_STDERR = LogConsole(stderr=True)


class SteadyTimeRemaining(ProgressColumn):
    """Time remaining from the mean time per step since the bar appeared.

    rich's ``TimeRemainingColumn`` estimates the speed from the last ``speed_estimate_period``
    (30 s) of progress only, so a bar whose steps take minutes never shows an estimate. Steps done
    before the bar appeared (a resumed run's finished units) are not counted as work of this run."""

    def __init__(self) -> None:
        super().__init__()
        self._start: dict = {}  # (task id, start time) -> its completed count when first drawn

    def render(self, task: Task) -> Text:
        # keyed by the start time too: a line ``reset`` for its next step counts from there
        start = self._start.setdefault((task.id, task.start_time), task.completed)
        if task.finished:
            return Text("0:00:00", style="progress.remaining")
        done = task.completed - start
        if done <= 0 or task.total is None or not task.elapsed:
            return Text("-:--:--", style="progress.remaining")
        remaining = task.elapsed / done * (task.total - task.completed)
        return Text(f"~{timedelta(seconds=round(remaining))} left", style="progress.remaining")


class _Count(ProgressColumn):
    """``done/total``, then what is counted where the line says it (its ``unit`` field)."""

    def render(self, task: Task) -> Text:
        total = "?" if task.total is None else f"{task.total:.0f}"
        unit = task.fields.get("unit", "")
        return Text(f"{task.completed:.0f}/{total}" + (f" {unit}" if unit else ""), style="progress.download")


#: how often a bar that moves is said as a line where nothing draws it live (a job's log)
LOG_EVERY_SECONDS = 60.0


class _LoggedProgress(Progress):
    """rich's bars; where nothing draws them live (a file or a pipe: a job's log, in which rich
    shows the bars only once they stop), each bar that moved is also said as a line, at most once
    every ``LOG_EVERY_SECONDS``: a job's log of hours held only "loading ..." until the end."""

    def __init__(self, *columns: ProgressColumn | str, **options) -> None:
        super().__init__(*columns, **options)
        self._said: dict[TaskID, tuple[float, float]] = {}  # a bar: (when last said, its count then)

    def update(self, task_id: TaskID, **changes) -> None:
        super().update(task_id, **changes)
        self._say(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._say(task_id)

    def _say(self, task_id: TaskID) -> None:
        console = self.console
        if self.disable or console.is_jupyter or (console.is_terminal and not console.is_dumb_terminal):
            return  # drawn live there
        task = next((task for task in self.tasks if task.id == task_id), None)
        if task is None or not task.visible:
            return
        now = self.get_time()
        when, count = self._said.setdefault(task_id, (now, task.completed))
        if task.completed != count and now - when >= LOG_EVERY_SECONDS:
            self._said[task_id] = (now, task.completed)
            self.console.print(self.make_tasks_table([task]))


def progress_bar(show: bool = True, get_time=None, *extra: ProgressColumn) -> Progress:
    """Description, bar, done/total (and its ``unit`` field), any ``extra`` columns, time elapsed
    and remaining (``get_time``: a clock, for tests), drawn on stderr; in a log, a line a minute
    (``_LoggedProgress``)."""
    return _LoggedProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        _Count(),
        *extra,
        TimeElapsedColumn(),
        SteadyTimeRemaining(),
        disable=not show,
        console=_STDERR,
        get_time=get_time,
    )


def announce(message: str, show: bool = True) -> None:
    """One line on stderr before a long step that has no bar (loading a model, writing the tables
    and plots), so the screen never sits silent for minutes."""
    if show:
        _STDERR.print(f"[dim]{message}[/]", highlight=False)
