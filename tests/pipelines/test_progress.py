"""The run bar tells the time when each step takes minutes (rich's own estimate forgets progress
older than 30 s and stays at -:--:--)."""

from io import StringIO

from rich.console import Console

from taskvec.pipelines.progress import progress_bar


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _row(progress) -> str:
    out = StringIO()
    Console(file=out, width=200, color_system=None).print(progress.make_tasks_table(progress.tasks))
    return out.getvalue()


def test_an_eta_appears_on_steps_of_minutes():
    clock = _Clock()
    progress = progress_bar(show=True)
    progress.get_time = clock  # the bar's clock, set before its task starts
    bar = progress.add_task("units", total=10)
    assert "-:--:--" in _row(progress)  # nothing done yet: no estimate
    for _ in range(2):
        clock.now += 300  # five minutes a step
        progress.advance(bar)
    assert "0:40:00" in _row(progress)  # 8 steps left at 5 minutes each


def test_a_resumed_bar_counts_only_this_runs_steps():
    clock = _Clock()
    progress = progress_bar(show=True)
    progress.get_time = clock
    bar = progress.add_task("units", total=10, completed=6)  # 6 finished by an earlier run
    _row(progress)
    clock.now += 120
    progress.advance(bar)
    assert "0:06:00" in _row(progress)  # 3 left at 2 minutes, not 3 x 120/7
