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


def test_a_slow_step_inside_a_unit_shows_its_count_and_an_eta(tmp_path, monkeypatch):
    """``taskvec run``'s second line counts the current step's work (here the extraction prompts,
    a minute a batch) and estimates the time it has left."""
    from helpers.reliability import TINY, write_tiny_task
    from helpers.tinyllm import tiny_llm

    import taskvec.pipelines.evaluate as pipeline
    from taskvec.evaluation.protocol import ExperimentConfig

    clock, bars, rows = _Clock(), [], []
    monkeypatch.setattr(
        pipeline, "progress_bar", lambda show: bars.append(progress_bar(show, clock)) or bars[-1]
    )
    real_run_unit = pipeline.run_unit

    def slow_run_unit(*args):
        *args, on_step, on_progress = args

        def told(done: int, total: int) -> None:
            clock.now += 60 if done else 0  # each batch takes a minute
            on_progress(done, total)
            rows.append(_row(bars[-1]))

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

    clock, bars, rows = _Clock(), [], []
    monkeypatch.setattr(
        pipeline, "progress_bar", lambda show: bars.append(progress_bar(show, clock)) or bars[-1]
    )
    real_answers = pipeline.patched_answers

    def slow_answers(*args):
        *args, on_progress = args

        def told(done: int, total: int) -> None:
            clock.now += 60
            on_progress(done, total)
            rows.append(_row(bars[-1]))

        return real_answers(*args, told)

    monkeypatch.setattr(pipeline, "patched_answers", slow_answers)
    task = write_tiny_task(tmp_path / "data", test=6)
    # a budget of about two test prompts (with their answers) a batch
    options = {**TINY, "layers": [1], "tasks": [str(task)], "seeds": [1, 2], "memory_budget_mb": 1.0}
    pipeline.evaluate(ExperimentConfig.create(**options), tmp_path / "run", tiny_llm("llama", layers=3))
    assert len(rows) > 1 and all("test answers at layer 1" in row for row in rows)
    assert "/12 answers" in rows[0] and "~" in rows[0]  # 6 items x 2 seeds, with an estimate
    assert "12/12 answers" in rows[-1]
