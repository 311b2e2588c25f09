"""A model in memory is the researcher's: taskvec's calls on it from two threads take turns (they
hooked the same modules and replaced the same head's forward, and answered with each other's
patches), and a forward hook the researcher put on the LM head is honoured by every read of it (a
logit bias was skipped; a hook indexing the vocabulary failed on taskvec's placeholder)."""

from __future__ import annotations

import threading

import torch
from helpers.tinyllm import text_queries, tiny_llm

import taskvec
from taskvec.patching.patch import Patch

#: the token the researcher's hook makes every logit's argmax
FORCED = 57


def test_calls_from_two_threads_answer_as_one_after_the_other_and_leave_the_head_as_it_was():
    model = tiny_llm("llama")
    queries = text_queries(4)
    vector = taskvec.extract(model, queries, task="t", spec="text-icl")
    patch = Patch(1, vector.at(1) * 40)
    alone = (taskvec.generate(model, queries[:2], max_new_tokens=3),)
    alone += (taskvec.generate(model, queries[2:], patch, max_new_tokens=3),)
    assert alone[1] != taskvec.generate(model, queries[2:], max_new_tokens=3)  # the patch changes answers
    answers: list[list] = [[], []]

    def call(which: int) -> None:
        for _ in range(12):
            if which == 0:
                answers[0].append(taskvec.generate(model, queries[:2], max_new_tokens=3))
            else:
                answers[1].append(taskvec.generate(model, queries[2:], patch, max_new_tokens=3))

    threads = [threading.Thread(target=call, args=(which,)) for which in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [[alone[0]] * 12, [alone[1]] * 12]
    head = model.unembedding()
    assert "forward" not in head.__dict__  # no placeholder forward left behind
    assert model.logit_lens(torch.zeros(2, model.hidden_size)).shape == (2, model.vocab_size)


def test_a_forward_hook_on_the_head_is_honoured_by_answers_sweeps_and_extraction():
    model = tiny_llm("llama")
    queries = text_queries(3)
    vector = taskvec.extract(model, queries, task="t", spec="text-icl")
    head = model.unembedding()
    read: list[int] = []

    def bias(_module, _args, logits: torch.Tensor) -> torch.Tensor:
        read.append(logits.shape[-1])  # a hook that reads the vocabulary's logits
        biased = logits.clone()
        biased[..., FORCED] += 1e4
        return biased

    handle = head.register_forward_hook(bias)
    try:
        forced = model.decode([FORCED])
        assert taskvec.generate(model, queries, max_new_tokens=1) == [forced] * 3
        swept = taskvec.sweep(model, queries, vector.vectors[:2], [0, 1])
        assert swept.clean.tolist() == [FORCED] * 3 and swept.patched.unique().tolist() == [FORCED]
        again = taskvec.extract(model, queries, task="t", spec="text-icl")  # its forward ran the hook
        assert torch.equal(again.vectors, vector.vectors)
    finally:
        handle.remove()
    assert set(read) == {model.vocab_size}
    assert taskvec.generate(model, queries, max_new_tokens=1) != [forced] * 3  # the hook was the cause


def test_a_logit_lens_decoding_in_another_thread_waits_for_an_answer_in_progress():
    """``lens_top1`` swapped in the head's placeholder forward before it took the lock: landing in
    another thread's answer, both calls failed and the head returned width-1 logits for good."""
    import time

    from taskvec.analysis import top1_decodings
    from taskvec.vectors.extract import last_token_states

    model = tiny_llm("llama")
    queries = text_queries(4)
    states = last_token_states(model, queries)
    alone = (taskvec.generate(model, queries, max_new_tokens=3), top1_decodings(model, states, [0, 1]))
    entered = threading.Event()

    def slow_first_layer(_module, _args):  # a researcher's probe: the answer's forward takes a while
        entered.set()
        time.sleep(0.3)

    handle = model.layers[0].register_forward_pre_hook(slow_first_layer)
    answers: list = []
    answering = threading.Thread(
        target=lambda: answers.append(taskvec.generate(model, queries, max_new_tokens=3))
    )
    try:
        answering.start()
        entered.wait(timeout=60)
        decoded = top1_decodings(model, states, [0, 1])  # meets the answer in progress
        answering.join()
    finally:
        handle.remove()
    assert answers == [alone[0]] and decoded.equals(alone[1])
    assert "forward" not in model.unembedding().__dict__
