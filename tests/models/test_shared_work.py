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
