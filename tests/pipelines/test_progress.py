"""The run bar tells the time when each step takes minutes (rich's own estimate forgets progress
older than 30 s and stays at -:--:--)."""

import pytest
from helpers.bars import FakeClock, bar_text

from taskvec.pipelines.progress import progress_bar


def test_an_eta_appears_on_steps_of_minutes():
    clock = FakeClock()
    progress = progress_bar(show=True)
    progress.get_time = clock  # the bar's clock, set before its task starts
    bar = progress.add_task("units", total=10)
    assert "-:--:--" in bar_text(progress)  # nothing done yet: no estimate
    for _ in range(2):
        clock.now += 300  # five minutes a step
        progress.advance(bar)
    assert "0:40:00" in bar_text(progress)  # 8 steps left at 5 minutes each


def test_a_resumed_bar_counts_only_this_runs_steps():
    clock = FakeClock()
    progress = progress_bar(show=True)
    progress.get_time = clock
    bar = progress.add_task("units", total=10, completed=6)  # 6 finished by an earlier run
    bar_text(progress)
    clock.now += 120
    progress.advance(bar)
    assert "0:06:00" in bar_text(progress)  # 3 left at 2 minutes, not 3 x 120/7


def test_a_slow_step_inside_a_unit_shows_its_count_and_an_eta(tmp_path, monkeypatch):
    """``taskvec run``'s second line counts the current step's work (here the extraction prompts,
    a minute a batch) and estimates the time it has left."""
    from helpers.reliability import TINY, write_tiny_task
    from helpers.tinyllm import tiny_llm

    import taskvec.pipelines.evaluate as pipeline
    from taskvec.evaluation.protocol import ExperimentConfig

    clock, bars, rows = FakeClock(), [], []
    monkeypatch.setattr(
        pipeline, "progress_bar", lambda show: bars.append(progress_bar(show, clock)) or bars[-1]
    )
    real_run_unit = pipeline.run_unit

    def slow_run_unit(*args):
        *args, on_step, on_progress = args

        def told(done: int, total: int) -> None:
            clock.now += 60 if done else 0  # each batch takes a minute
            on_progress(done, total)
            rows.append(bar_text(bars[-1]))

        return real_run_unit(*args, on_step, told)

    monkeypatch.setattr(pipeline, "run_unit", slow_run_unit)
    task = write_tiny_task(tmp_path / "data")
    # about two prompts a batch: the 7 extraction prompts take 4 batches
    options = {**TINY, "layers": [1], "tasks": [str(task)], "seeds": [1], "memory_budget_mb": 1.0}
    pipeline.evaluate(ExperimentConfig.create(**options), tmp_path / "run", tiny_llm("llama", layers=3))
    extracting = [row for row in rows if "task vector (step 1/5)" in row]
    assert "0/7 prompts" in extracting[0] and "-:--:--" in extracting[0]  # nothing done: no estimate
    second = extracting[2]  # two batches of 2 prompts in 2 minutes: 3 prompts left, 1.5 min
    assert "4/7 prompts" in second and "~0:01:30 left" in second


def test_the_test_answers_after_the_units_have_a_bar_of_their_own(tmp_path, monkeypatch, capsys):
    """The test split is answered at the chosen layer after the units: counted, not silent."""
    from helpers.reliability import TINY, write_tiny_task
    from helpers.tinyllm import tiny_llm

    import taskvec.pipelines.evaluate as pipeline
    from taskvec.evaluation.protocol import ExperimentConfig

    clock, bars, rows = FakeClock(), [], []
    monkeypatch.setattr(
        pipeline, "progress_bar", lambda show: bars.append(progress_bar(show, clock)) or bars[-1]
    )
    real_answers = pipeline.patched_answers

    def slow_answers(*args):
        *args, on_progress = args

        def told(done: int, total: int) -> None:
            clock.now += 60
            on_progress(done, total)
            rows.append(bar_text(bars[-1]))

        return real_answers(*args, told)

    monkeypatch.setattr(pipeline, "patched_answers", slow_answers)
    task = write_tiny_task(tmp_path / "data", test=6)
    # a budget of about two test prompts (with their answers) a batch
    options = {**TINY, "layers": [1], "tasks": [str(task)], "seeds": [1, 2], "memory_budget_mb": 1.0}
    pipeline.evaluate(ExperimentConfig.create(**options), tmp_path / "run", tiny_llm("llama", layers=3))
    assert len(rows) > 1 and all("test answers at layer 1" in row for row in rows)
    assert "/12 answers" in rows[0] and "~" in rows[0]  # 6 items x 2 seeds, with an estimate
    assert "12/12 answers" in rows[-1]


def test_the_bars_go_to_stderr_not_stdout(capsys):
    """stdout is for what a command prints as its result (it may be piped); bars are not that."""
    with progress_bar(show=True) as progress:
        progress.advance(progress.add_task("units", total=2))
    out, err = capsys.readouterr()
    assert "1/2" in err and out == ""


def _stage_rows(rows: list, clock: FakeClock, bars: list):
    """A wrapper for an engine function a stage calls with ``on_progress``: each batch takes a
    minute on ``clock``, and the bar's row is kept (with the minutes since the bar began) as the
    call starts and after each batch."""

    def wrap(real):
        def wrapper(*args, on_progress, **kwargs):
            rows.append((clock.now - bars[-1].started, bar_text(bars[-1].progress)))

            def told(done: int, total: int) -> None:
                clock.now += 60
                on_progress(done, total)
                rows.append((clock.now - bars[-1].started, bar_text(bars[-1].progress)))

            return real(*args, on_progress=told, **kwargs)

        return wrapper

    return wrap


def _eta_agrees(elapsed: float, row: str, total: int) -> bool:
    """The row's estimate is the mean time per answer since the bar began times those left."""
    import re
    from datetime import timedelta

    done = int(re.search(rf"(\d+)/{total} answers", row).group(1))
    if done in (0, total):
        return True
    return f"~{timedelta(seconds=round(elapsed / done * (total - done)))} left" in row


def test_ensembling_and_task_conflict_count_their_answers_with_an_eta(tmp_path, monkeypatch):
    """``taskvec reproduce``'s stages after the matrix show a bar each: the answers of the
    ensembling (Fig. 8) and task-conflict (Fig. 9) stages, with the steady estimate."""
    from types import SimpleNamespace

    from helpers.families.llava import build_llava
    from helpers.reliability import write_tiny_task

    import taskvec.pipelines.reproduce as pipeline
    from taskvec.experiments.conditions import Condition

    clock, bars, rows = FakeClock(), [], []

    def clocked_bar(show):
        bars.append(SimpleNamespace(progress=progress_bar(show, clock), started=clock.now))
        return bars[-1].progress

    monkeypatch.setattr(pipeline, "progress_bar", clocked_bar)
    wrap = _stage_rows(rows, clock, bars)
    monkeypatch.setattr(pipeline, "ensemble_scores", wrap(pipeline.ensemble_scores))
    monkeypatch.setattr(pipeline, "conflict_rows", wrap(pipeline.conflict_rows))
    # a conflicting pair (Fig. 9) of tiny tasks: the same 7 + 3 items under the pair's names
    tasks = [
        str(write_tiny_task(tmp_path / "data", name)) for name in ("country_capital", "country_currency")
    ]
    adapter = build_llava()
    config = pipeline.ReproduceConfig.create(
        model=adapter.name, tasks=tasks, seeds=[1], styles=["noto"], ensemble_counts=[5]
    )
    reproduction = pipeline.Reproduction(adapter, config, tmp_path / "reproduce", show_progress=True)
    main = Condition("text-icl", "image", "noto")
    options = {**reproduction.run_options(), "layers": [1]}
    reproduction.conditions = pipeline.run_conditions(adapter, [main], tmp_path / "runs", False, **options)

    reproduction.run_ensemble()  # per task 3 test queries x 3 vectors (instruction, 5 exemplars, ensemble)
    assert all("ensembling" in row and "/18 answers" in row for _, row in rows)
    assert "0/18 answers" in rows[0][1] and "18/18 answers" in rows[-1][1]
    assert any("~" in row for _, row in rows) and all(_eta_agrees(t, row, 18) for t, row in rows)

    rows.clear()
    reproduction.run_conflict()  # both directions: 3 shared items x (control, patched)
    assert all("conflict" in row and "/12 answers" in row for _, row in rows)
    assert "country_currency <- country_capital" in rows[-1][1] and "12/12" in rows[-1][1]
    assert any("~" in row for _, row in rows) and all(_eta_agrees(t, row, 12) for t, row in rows)


def test_in_a_log_a_bar_and_a_note_each_keep_to_one_line(capsys, monkeypatch):
    """Into a file or a pipe (a scheduler's log) rich assumes 80 columns: a bar's count wrapped
    onto a line of its own and a run's notes broke mid-sentence."""
    from taskvec.pipelines import progress as bars
    from taskvec.pipelines.progress import LogConsole

    monkeypatch.delenv("COLUMNS", raising=False)  # pytest-xdist's workers have COLUMNS=80
    monkeypatch.setattr(bars, "_STDERR", LogConsole(stderr=True))  # rich reads COLUMNS when made
    description = "country_capital: test answers at layer 21"
    with progress_bar(show=True) as progress:
        progress.add_task(description, total=100, completed=100, unit="answers")
    note = "layer selection shared (the paper's protocol): " + "the best of their mean curve; " * 6
    LogConsole(stderr=True).print(note)
    lines = capsys.readouterr().err.splitlines()
    assert [line.rstrip() for line in lines if line.strip()] == [
        next(line.rstrip() for line in lines if description in line),
        note.rstrip(),
    ]
    assert "100/100 answers" in lines[0] and len(note) > 150


def test_in_a_log_columns_still_sets_the_width(capsys, monkeypatch):
    from taskvec.pipelines.progress import LogConsole

    monkeypatch.setenv("COLUMNS", "60")
    LogConsole(stderr=True).print("word " * 30)
    assert max(len(line) for line in capsys.readouterr().err.splitlines()) <= 60


@pytest.mark.parametrize("told", ["width", "size", "argument"])
def test_in_a_log_a_width_the_caller_gives_is_kept(capsys, monkeypatch, told):
    from taskvec.pipelines.progress import LogConsole

    monkeypatch.delenv("COLUMNS", raising=False)
    console = LogConsole(stderr=True, width=50) if told == "argument" else LogConsole(stderr=True)
    if told == "width":
        console.width = 50
    elif told == "size":
        console.size = (50, 25)
    assert console.width == 50
    console.print("word " * 30)
    assert max(len(line) for line in capsys.readouterr().err.splitlines()) <= 50


def test_in_a_log_a_bar_that_moves_is_said_once_a_minute(capsys, monkeypatch):
    """rich draws nothing into a file until its bars stop: a job's log of hours held only
    "loading ..." until the end, though units had finished."""
    from taskvec.pipelines import progress as bars
    from taskvec.pipelines.progress import LogConsole

    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(bars, "_STDERR", LogConsole(stderr=True))
    clock = FakeClock()
    progress = progress_bar(show=True)
    progress.get_time = clock
    with progress:
        bar = progress.add_task("units", total=6, unit="units")
        progress.update(bar)  # seen at 0 s
        for _ in range(6):
            clock.now += 25  # a unit every 25 s: said after the 3rd (75 s) and the 6th (150 s)
            progress.advance(bar)
        clock.now += 100
        progress.update(bar)  # no move, no line
        said_while_running = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(said_while_running) == 2
    assert "3/6 units" in said_while_running[0] and "6/6 units" in said_while_running[1]


@pytest.mark.parametrize(
    ("terminal", "dumb", "notebook", "lines"),
    [(True, False, False, 0), (True, True, False, 1), (False, False, True, 0)],
    ids=["terminal", "dumb terminal", "notebook"],
)
def test_the_minute_lines_go_only_where_rich_draws_no_live_bar(terminal, dumb, notebook, lines, monkeypatch):
    """On a terminal the live bar alone tells the progress; rich draws none on a dumb terminal
    (Emacs' shell, some CI ptys), so the lines are all it shows; a notebook draws its bars live,
    and a line a minute beside them was noise."""
    from rich.console import Console

    from taskvec.pipelines import progress as bars

    said: list = []
    progress = progress_bar(show=True)
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: terminal))
    monkeypatch.setattr(Console, "is_dumb_terminal", property(lambda self: dumb))
    monkeypatch.setattr(progress.console, "is_jupyter", notebook)
    monkeypatch.setattr(progress.console, "print", lambda *args, **kwargs: said.append(args))
    clock = FakeClock()
    progress.get_time = clock
    bar = progress.add_task("units", total=2)
    progress.update(bar)
    clock.now += 120
    progress.advance(bar)
    assert len(said) == lines and bars.LOG_EVERY_SECONDS <= 120
