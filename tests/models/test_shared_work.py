"""``SharedWork`` hands out the first computation of a key to later askers; with ``only`` it keeps
just the kinds of results worth keeping, computing the others afresh each time."""

from helpers.families import llava

from taskvec.models.shared_work import SharedWork
from taskvec.prompts.template import PAPER

PROMPTS = [PAPER.query("cat"), PAPER.query("sky")]


def test_a_kept_kind_is_computed_once_and_others_every_time():
    adapter = llava.build_llava()
    shared = SharedWork(only={"greedy answers"})
    calls = []

    def compute(what):
        def run():
            calls.append(what)
            return [what]

        return run

    for _ in range(2):
        for what in ("greedy answers", "last-token states"):
            key = SharedWork.key(what, adapter, PROMPTS, ())
            assert shared.get(key, compute(what)) == [what]
    assert calls == ["greedy answers", "last-token states", "last-token states"]
    assert shared.tally[("greedy answers", "reused")] == 1
    assert shared.tally[("last-token states", "computed")] == 2


def test_without_only_every_kind_is_kept():
    adapter = llava.build_llava()
    shared, calls = SharedWork(), []
    for _ in range(2):
        key = SharedWork.key("last-token states", adapter, PROMPTS, ())
        shared.get(key, lambda: calls.append(1) or calls)
    assert calls == [1]


def test_a_provided_computation_counts_on_the_step_that_runs_it(tmp_path):
    """A reproduction answers the xBase prompts of several conditions in one computation
    (``provide``), run inside the xBase step of the first unit that asks: that step's line
    counts its answers (every condition's), instead of sitting at 0 until it ends."""
    from helpers.reliability import TINY, write_tiny_task
    from helpers.tinyllm import tiny_llm

    from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts, answer_options, run_unit
    from taskvec.patching.patch import generate_ids, line_complete
    from taskvec.tasks.registry import load_task

    adapter = tiny_llm("llama", layers=3)
    path = write_tiny_task(tmp_path)
    # a budget of a few prompts a batch: the answers come in several batches
    config = ExperimentConfig.create(**{**TINY, "layers": [1], "tasks": [str(path)], "memory_budget_mb": 1.0})
    task = load_task(str(path))
    base = UnitPrompts(task, config, 1).test_base  # 3 prompts
    shared = SharedWork()

    def for_two_conditions(on_progress):  # here the other condition asks the same prompts
        ids = generate_ids(
            adapter, [*base, *base], None, 2, config.budget(adapter), line_complete(adapter), on_progress
        )
        return [ids[: len(base)]]

    shared.provide(
        [SharedWork.key("greedy answers", adapter, base, answer_options(adapter, None, config))],
        for_two_conditions,
    )
    step, told = [""], []
    run_unit(
        adapter,
        task,
        1,
        config,
        shared=shared,
        on_step=lambda _index, _count, name: step.__setitem__(0, name),
        on_progress=lambda done, total: told.append((step[0], done, total)),
    )
    xbase = [(done, total) for name, done, total in told if name == "xBase answers"]
    assert xbase[0] == (0, 3) and xbase[-1] == (6, 6) and len(xbase) > 2
