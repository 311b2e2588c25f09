"""Reading rich progress bars in tests: a clock the test moves by hand, and the bars as text."""

from __future__ import annotations

from io import StringIO

from rich.console import Console


class FakeClock:
    """A bar's ``get_time``: the test sets ``now`` (seconds) between steps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bar_text(progress) -> str:
    """Every bar of ``progress`` as plain text, on a line wide enough for all its columns."""
    out = StringIO()
    Console(file=out, width=200, color_system=None).print(progress.make_tasks_table(progress.tasks))
    return out.getvalue()
