"""Answers that end before ``max_new_tokens``: a row whose answer is complete (``until``) stops
and leaves the batch, and its answer is the full-length answer cut there, token for token, on
tiny LMs of every attention scheme, under several patches, after shared prefixes and where the
cache cannot shrink. The protocol's rule, ``line_complete``, ends an answer where its line ends,
which leaves every line-based reading of it unchanged (checked on SmolLM2's real answers)."""

import pytest
import torch
from helpers.patches import mixed_patches, sequence_lengths_through_first_layer, shapes_through_first_layer
from helpers.tinyllm import ARCHITECTURES, text_queries, tiny_text_lm

import taskvec.patching.kv_cache as kv_cache
from taskvec.evaluation.metrics import exact_match
from taskvec.patching.patch import (
    answer_line_end,
    answer_text,
    generate,
    generate_ids,
    generate_ids_under_patches,
    line_complete,
)

torch.set_num_threads(1)

TOKENS = 5


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def text_lm(request):
    return tiny_text_lm(request.param)


def ends_on_multiple_of_three(ids: list[int]) -> bool:
    """A stand-in for "the line ended" that random tiny models meet at varied steps."""
    return ids[-1] % 3 == 0


def cut(answer: list[int], until) -> list[int]:
    """``answer`` up to the first token after which ``until`` holds."""
    for n in range(1, len(answer) + 1):
        if until(answer[:n]):
            return answer[:n]
    return answer


def batch_sizes_through_first_layer(adapter, run) -> list[int]:
    return [shape[0] for shape in shapes_through_first_layer(adapter, run)]


def test_answers_that_end_early_are_the_full_answers_cut_there(text_lm):
    prompts = text_queries(8)
    full = generate_ids(text_lm, prompts, None, TOKENS)
    ended = generate_ids(text_lm, prompts, None, TOKENS, until=ends_on_multiple_of_three)
    assert ended == [cut(answer, ends_on_multiple_of_three) for answer in full]
    lengths = {len(answer) for answer in ended}
    assert min(lengths) < TOKENS, "no answer ended early: the test would not see the rows leave"


def test_finished_rows_leave_the_batch(text_lm):
    prompts = text_queries(8)
    ended = []
    sizes = batch_sizes_through_first_layer(
        text_lm,
        lambda: ended.extend(generate_ids(text_lm, prompts, None, TOKENS, until=ends_on_multiple_of_three)),
    )
    # the prompts' forward, then each step runs only the answers still going
    still_going = [sum(len(a) > step for a in ended) for step in range(1, TOKENS)]
    assert sizes == [len(prompts)] + [n for n in still_going if n]
    assert sizes[-1] < len(prompts), "no row left the batch"


def test_a_cache_that_cannot_shrink_keeps_its_rows_and_ends_the_answers(text_lm, monkeypatch):
    prompts = text_queries(8)
    expected = generate_ids(text_lm, prompts, None, TOKENS, until=ends_on_multiple_of_three)
    monkeypatch.setattr(kv_cache, "FORKABLE_LAYERS", ())
    ended = []
    sizes = batch_sizes_through_first_layer(
        text_lm,
        lambda: ended.extend(generate_ids(text_lm, prompts, None, TOKENS, until=ends_on_multiple_of_three)),
    )
    assert ended == expected
    assert set(sizes) == {len(prompts)}


def test_answers_under_several_patches_end_as_one_run_per_patch(text_lm):
    prompts = text_queries(6)
    patches = mixed_patches(text_lm)
    until = ends_on_multiple_of_three
    expected = [generate_ids(text_lm, prompts, p, TOKENS, until=until) for p in patches]
    assert generate_ids_under_patches(text_lm, prompts, patches, TOKENS, until=until) == expected
    calls = sequence_lengths_through_first_layer(
        text_lm, lambda: generate_ids_under_patches(text_lm, prompts, patches, TOKENS, until=until)
    )
    # one prefix forward, then the patches' rows together, step by step until the longest answer ends
    assert len(calls) == 1 + max(len(a) for answers in expected for a in answers)
    assert any(len(a) < TOKENS for answers in expected for a in answers)


@pytest.mark.parametrize(
    ("text", "end"),
    [
        (" Paris\nQ", 6),
        (" Paris.\n\nQ:", 7),
        ("\n Paris\n", 7),  # newlines and spaces before the answer do not end it
        (" Paris", None),
        ("\n\n ", None),
        ("", None),
    ],
)
def test_where_an_answer_line_ends(text, end):
    assert answer_line_end(text) == end


@pytest.mark.slow
def test_line_ends_keep_what_the_answers_say_on_smollm2(smollm2):
    from taskvec.prompts.template import get_template

    template = get_template("paper")
    demos = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Kenya", "Nairobi")]
    queries = ["Germany", "Spain", "Egypt", "Canada", "Peru", "Norway"]
    prompts = [template.icl(demos, q) for q in queries] + [template.query(q) for q in queries]
    full = generate_ids(smollm2, prompts, None, 6)
    ended = generate_ids(smollm2, prompts, None, 6, until=line_complete(smollm2))
    assert ended == [cut(answer, line_complete(smollm2)) for answer in full]
    assert any(len(answer) < 6 for answer in ended), "no line ended within six tokens"
    for whole, short in zip(full, ended, strict=True):
        text, short_text = smollm2.decode(whole), smollm2.decode(short)
        assert answer_text(smollm2, short) == answer_text(smollm2, whole)
        assert short_text.split("\n", 1)[0] == text.split("\n", 1)[0]  # the line the exact metric reads
        assert exact_match(short_text, ["Berlin"]) == exact_match(text, ["Berlin"])
    assert generate(smollm2, prompts, max_new_tokens=6) == [answer_text(smollm2, a) for a in full]
    assert generate(smollm2, prompts, max_new_tokens=6, stop_at_newline=False) == [
        smollm2.decode(a) for a in full
    ]


def test_the_rows_let_go_are_cut_from_the_cache_in_place_and_a_forked_cache_stays_whole(text_lm):
    """A batch whose answers ended cuts its own cache (the rows let go freed at once; a fork kept
    the whole cache alive beside the kept rows until the batch ended); the cache it was forked
    from, a shared prefix, keeps every row."""
    from taskvec.models.cache_keyword import cache_of
    from taskvec.patching.kv_cache import cache_rows, keep_rows

    encoded = text_lm.encode(text_queries(4))
    prefix = cache_of(text_lm.forward(encoded, use_cache=True))
    whole = [(layer.keys.clone(), layer.values.clone()) for layer in prefix.layers]
    forked = cache_rows(prefix, torch.arange(4))
    kept = forked.layers[0]
    keep_rows(forked, torch.tensor([1, 3]))
    assert forked.layers[0] is kept, "cut in place, not forked again"
    for layer, (keys, values) in zip(forked.layers, whole, strict=True):
        assert torch.equal(layer.keys, keys[[1, 3]]) and torch.equal(layer.values, values[[1, 3]])
    for layer, (keys, values) in zip(prefix.layers, whole, strict=True):
        assert torch.equal(layer.keys, keys) and torch.equal(layer.values, values)


def test_a_budget_for_k_answered_prompts_answers_k_at_once(text_lm):
    """An answered prompt holds its cache grown by the answer (``answer_row_tokens``): a budget
    of exactly that for 8 prompts (padded to the longest) answers them in one batch, one token
    less in two. Planned as a ``max_new_tokens``-th of the budget per prompt token, the same
    budget answered them in several."""
    from taskvec.models.batching import MemoryBudget, token_counts

    prompts = text_queries(8)
    needed = len(prompts) * (max(token_counts(text_lm, prompts)) + TOKENS - 1)
    per_token = MemoryBudget().token_bytes(text_lm)
    for tokens, batches in ((needed, 1), (needed - 1, 2)):
        budget = MemoryBudget(tokens * per_token)
        sizes = batch_sizes_through_first_layer(
            text_lm, lambda budget=budget: generate_ids(text_lm, prompts, None, TOKENS, budget)
        )
        assert len(sizes) == batches * TOKENS, (tokens, sizes)  # each batch: its forward, then a step a token


def test_a_prompt_too_big_to_answer_is_named_by_its_own_length_before_any_is_answered(text_lm):
    """The longest prompts come last: checked as they came, the shorter ones' answers were
    computed and thrown away (a minute of a 7B model's time), and the refusal named the tokens
    the planner counted as the prompt's length."""
    from taskvec.errors import MemoryBudgetError
    from taskvec.models.batching import MemoryBudget, token_counts

    prompts = text_queries(8)
    lengths = token_counts(text_lm, prompts)
    length = max(lengths)
    assert min(lengths) < length, "every prompt as long: none would have been answered first"
    budget = MemoryBudget((length + TOKENS - 2) * MemoryBudget().token_bytes(text_lm))
    ran = []
    hook = text_lm.layers[0].register_forward_hook(lambda *_: ran.append(True))
    said = rf"one prompt of {length} tokens needs {length + TOKENS - 1} tokens of the memory budget"
    try:
        with pytest.raises(MemoryBudgetError, match=said):
            generate_ids(text_lm, prompts, None, TOKENS, budget)
    finally:
        hook.remove()
    assert not ran, "shorter prompts were answered before the refusal"
