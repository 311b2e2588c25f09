"""The layer-skipping sweep (``sweep_logits``) computes what the plain path computes.

The plain path is a full forward of the query with the vector patched into layer ``l``'s output at
the last token (one forward per layer). The fast path starts each patched row at layer ``l + 1``
from the cached prefix. Both must give the same logits (up to float rounding) and the same
answers, on real SmolLM2 and on tiny random models of every architecture the engine meets:
grouped-query attention, sliding windows, logit soft-capping, partial rotary with layer norms,
3-D rope, cross-attention, image tokens.
"""

import warnings
from pathlib import Path

import pytest
import torch
from helpers.contract import check_logit_lens_is_the_models_own_read_out
from helpers.tinyllm import ARCHITECTURES, text_queries, tiny_text_lm
from helpers.tinyparts import image_query, text_query

import taskvec.patching.kv_cache as kv_cache
import taskvec.patching.sweep as sweep_module
from taskvec.errors import LayerError, VectorMismatchError
from taskvec.models.batching import MemoryBudget, plan_sweep_batches
from taskvec.models.registry import families
from taskvec.patching.hooks import patching_last_token
from taskvec.patching.sweep import FastPathUnavailable, sweep, sweep_logits, sweep_naive
from taskvec.prompts.template import PAPER

torch.set_num_threads(1)

#: every text model type a family serves, in causal_lm.py or in a file of its own
TEXT_MODEL_TYPES = {t for t, family in families().items() if not family.adapter_class.supports_images}


def plain_logits(adapter, encoded, vectors, layers, mode="replace", scale=1.0):
    """The reference: one full forward per patched layer, and a clean one. ``[n, P, V]``, ``[n, V]``."""
    rows = torch.arange(encoded.batch_size)
    columns = []
    with torch.no_grad():
        for j, layer in enumerate(layers):
            values = vectors[j].expand(encoded.batch_size, -1)
            with patching_last_token(adapter.layers, {layer: (rows, values)}, mode, scale):
                columns.append(adapter.forward(encoded).logits[:, -1, :])
        clean = adapter.forward(encoded).logits[:, -1, :]
    return torch.stack(columns, dim=1), clean


def far_vectors(adapter, seed: int = 0) -> torch.Tensor:
    """``[layers, hidden]`` vectors large enough to change answers (a vacuous patch proves nothing)."""
    generator = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(adapter.num_layers, adapter.hidden_size, generator=generator)


def assert_same(adapter, encoded, vectors, layers, mode="replace", scale=1.0, atol=1e-4):
    fast_patched, fast_clean = sweep_logits(adapter, encoded, vectors, layers, mode, scale)
    plain_patched, plain_clean = plain_logits(adapter, encoded, vectors, layers, mode, scale)
    torch.testing.assert_close(fast_clean, plain_clean, atol=atol, rtol=1e-4)
    torch.testing.assert_close(fast_patched, plain_patched, atol=atol, rtol=1e-4)
    assert torch.equal(fast_patched.argmax(-1), plain_patched.argmax(-1))
    # the patch matters: otherwise a sweep that ignored it would pass
    assert (plain_patched.argmax(-1) != plain_clean.argmax(-1)[:, None]).any()


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def text_lm(request):
    return tiny_text_lm(request.param)


@pytest.mark.parametrize("mode", ["replace", "add"])
def test_fast_logits_equal_full_forwards_on_tiny_lms(text_lm, mode):
    encoded = text_lm.encode(text_queries())
    layers = list(range(text_lm.num_layers))
    scale = 0.7 if mode == "add" else 1.0  # replace refuses a scale it would ignore
    assert_same(text_lm, encoded, far_vectors(text_lm), layers, mode, scale=scale)


@pytest.mark.parametrize(
    "name", [name for name, scheme in ARCHITECTURES.items() if scheme["model_type"] in TEXT_MODEL_TYPES]
)
def test_the_logit_lens_reads_what_each_tiny_lm_reads(name):
    """(Persimmon is here as Fuyu's language model, which the Fuyu family reads.)"""
    check_logit_lens_is_the_models_own_read_out(tiny_text_lm(name), text_queries())


def test_layer_subsets_in_any_order_with_repeats(text_lm):
    encoded = text_lm.encode(text_queries())
    vectors = far_vectors(text_lm)
    layers = [3, 0, 2, 2]
    chosen = torch.stack([vectors[0], vectors[1], vectors[2], -vectors[2]])  # a repeated layer, two vectors
    assert_same(text_lm, encoded, chosen, layers)
    # and the same columns as the sweep over every layer, in the caller's order
    full = sweep(
        text_lm, text_queries(), torch.stack([vectors[1], vectors[1], vectors[2], vectors[0]]), [0, 1, 2, 3]
    )
    part = sweep(text_lm, text_queries(), chosen, layers)
    assert torch.equal(part.patched[:, [0, 1, 2]], full.patched[:, [3, 0, 2]])


def test_a_single_patched_layer(text_lm):
    encoded = text_lm.encode(text_queries())
    for layer in (0, text_lm.num_layers - 1):
        assert_same(text_lm, encoded, far_vectors(text_lm)[[layer]], [layer])


def test_batches_chosen_by_the_budget_do_not_change_answers(text_lm):
    queries = text_queries(6)
    vectors = far_vectors(text_lm)
    layers = list(range(text_lm.num_layers))
    one_batch = sweep(text_lm, queries, vectors, layers)
    tight = MemoryBudget(MemoryBudget().sweep_query_bytes(text_lm, 12, len(layers)) * 2)
    assert len(list(plan_sweep_batches(text_lm, [10] * 6, len(layers), tight))) > 1
    many_batches = sweep(text_lm, queries, vectors, layers, budget=tight)
    assert torch.equal(one_batch.patched, many_batches.patched)
    assert torch.equal(one_batch.clean, many_batches.clean)


# --- real SmolLM2 -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["replace", "add"])
def test_fast_logits_equal_full_forwards_on_smollm2(smollm2, mode):
    encoded = smollm2.encode([PAPER.query(w) for w in ["France", "the United Kingdom", "Peru"]])
    vectors = far_vectors(smollm2) / 3
    # 30 layers of float32 matmuls shaped differently (cached prefix, other batch sizes): ~1e-3 of logits ~10
    scale = 0.5 if mode == "add" else 1.0  # replace refuses a scale it would ignore
    assert_same(smollm2, encoded, vectors, list(range(smollm2.num_layers)), mode, scale=scale, atol=3e-3)


# --- tiny VLMs of every family (built by the family tests) -------------------------------------------


def _family_cases():
    from helpers.families import CASES

    return CASES


@pytest.fixture(scope="module", params=_family_cases(), ids=str)
def vlm(request):
    return request.param.build()


def test_fast_logits_equal_full_forwards_on_tiny_vlms(vlm):
    if not vlm.prefix_cache_is_exact:
        pytest.skip("its prefix attends to the last token: sweep() runs the plain path (family contract)")
    if vlm.allows_text_only:
        queries = [image_query(0), text_query(1), image_query(2)]
    else:
        queries = [image_query(0), image_query(1)]
    encoded = vlm.encode(queries)
    assert_same(vlm, encoded, far_vectors(vlm), list(range(vlm.num_layers)), atol=2e-4)


@pytest.mark.parametrize(
    "bad", ["a layer out of range", "a vector short", "not finite"], ids=lambda bad: bad.replace(" ", "_")
)
def test_sweep_logits_checks_its_input_as_the_sweep_does(text_lm, bad):
    """``sweep_logits`` took a layer past the model's last (its rows ran no decoder layer and gave
    numbers of nothing), fewer vectors than layers, and NaN vectors, all without a word."""
    layers = [0, 1]
    vectors = far_vectors(text_lm)[: len(layers)]
    if bad == "a layer out of range":
        layers = [0, text_lm.num_layers + 5]
    elif bad == "a vector short":
        vectors = vectors[:1]
    else:
        vectors[1, 0] = float("nan")
    encoded = text_lm.encode(text_queries(2))
    with pytest.raises((LayerError, VectorMismatchError)):
        sweep_logits(text_lm, encoded, vectors, layers)


# --- where the fast path does not apply, the sweep runs the plain path --------------------------------


def test_one_token_queries_run_the_plain_path(text_lm):
    queries = [[""], [""]]  # the tokenizer's BOS alone: nothing before the last token to cache
    assert text_lm.encode(queries).seq_len == 1
    vectors = far_vectors(text_lm)
    layers = list(range(text_lm.num_layers))
    with pytest.raises(FastPathUnavailable):
        sweep_logits(text_lm, text_lm.encode(queries), vectors, layers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not a fallback: the plain path is these queries' own
        result = sweep(text_lm, queries, vectors, layers)
    naive = sweep_naive(text_lm, queries, vectors, layers)
    assert torch.equal(result.patched, naive.patched) and torch.equal(result.clean, naive.clean)


def test_only_a_batch_of_one_token_queries_runs_in_full(text_lm, monkeypatch):
    """A batch of one-token queries made the whole sweep start again on the plain path."""
    queries = [[""], [""], *text_queries(3)]
    monkeypatch.setattr(sweep_module, "plan_sweep_batches", lambda *_args: iter([[0, 1], [2, 3, 4]]))
    plain_runs = []
    run_plain = sweep_module._sweep_plain

    def recording(adapter, batch, *args, **kwargs):
        plain_runs.append(len(batch))
        return run_plain(adapter, batch, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "_sweep_plain", recording)
    vectors = far_vectors(text_lm)
    layers = list(range(text_lm.num_layers))
    result = sweep(text_lm, queries, vectors, layers)
    assert plain_runs == [2], "the three longer queries take the fast path"
    naive = sweep_naive(text_lm, queries, vectors, layers)
    assert torch.equal(result.patched, naive.patched) and torch.equal(result.clean, naive.clean)


def test_an_unknown_cache_runs_the_plain_path(text_lm, monkeypatch):
    monkeypatch.setattr(kv_cache, "FORKABLE_LAYERS", ())
    queries = text_queries(3)
    vectors = far_vectors(text_lm)
    layers = list(range(text_lm.num_layers))
    with pytest.warns(UserWarning, match="unknown cache layer"):
        result = sweep(text_lm, queries, vectors, layers)
    naive = sweep_naive(text_lm, queries, vectors, layers)
    assert torch.equal(result.patched, naive.patched) and torch.equal(result.clean, naive.clean)


def test_a_family_whose_prefix_cache_is_not_exact_is_told_its_sweep_runs_in_full(text_lm, monkeypatch):
    """PaliGemma's cached prefix is not what a full forward computes: its sweep is the plain one,
    and a researcher waiting on it is told why."""
    monkeypatch.setattr(type(text_lm), "prefix_cache_is_exact", property(lambda _self: False))
    queries = text_queries(2)
    vectors = far_vectors(text_lm)[:2]
    with pytest.warns(UserWarning, match="layer sweep runs in full .*cached prefix is not") as said:
        result = sweep(text_lm, queries, vectors, [0, 1])
    # said from taskvec's line (a filter by module finds it), not from the wrapper around the call
    assert [Path(w.filename).name for w in said] == ["sweep.py"]
    naive = sweep_naive(text_lm, queries, vectors, [0, 1])
    assert torch.equal(result.patched, naive.patched)


def test_the_fast_path_needs_no_fallback_on_smollm2_shaped_models(text_lm):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sweep(text_lm, text_queries(3), far_vectors(text_lm), list(range(text_lm.num_layers)))


def test_hooks_are_removed_even_when_a_layer_fails(text_lm):
    calls = {"n": 0}

    def failing(_module, _inputs, _output):
        calls["n"] += 1
        if calls["n"] == 3:  # passes A and B have run: fail inside pass C
            raise RuntimeError("boom")

    handle = text_lm.layers[1].register_forward_hook(failing)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            sweep(text_lm, text_queries(2), far_vectors(text_lm), list(range(text_lm.num_layers)))
    finally:
        handle.remove()
    for layer in text_lm.layers:
        assert not layer._forward_hooks and not layer._forward_pre_hooks


# --- the budget -------------------------------------------------------------------------------------


def test_sweep_batches_fit_the_budget_whatever_the_number_of_queries(text_lm):
    budget = MemoryBudget.from_mb(2)
    rows = text_lm.num_layers
    largest = {}
    for count in (30, 300):
        lengths = [8] * count
        batches = list(plan_sweep_batches(text_lm, lengths, rows, budget))
        assert sorted(i for b in batches for i in b) == list(range(count))
        for batch in batches:
            assert len(batch) * budget.sweep_query_bytes(text_lm, 8, rows) <= budget.bytes
        largest[count] = max(len(b) for b in batches)
    assert largest[30] < 30  # the budget, not the data, sets the batch
    assert largest[300] == largest[30]  # more queries mean more batches, not bigger ones


def test_the_unembedding_runs_only_for_the_rows_that_are_read(text_lm, monkeypatch):
    """Pass A fills the prefix cache and nobody reads its logits: the head sees n clean rows
    (pass B) and n x layers patched rows (pass C), nothing more."""
    import taskvec.models.head as head_module

    screened = []
    screen_call = head_module.HeadScreen.__call__

    def counted(self, rows):
        screened.append(len(rows))
        return screen_call(self, rows)

    monkeypatch.setattr(head_module.HeadScreen, "__call__", counted)
    queries, layers = text_queries(4), list(range(text_lm.num_layers))
    result = sweep(text_lm, queries, far_vectors(text_lm), layers)
    assert screened == [4, 4 * len(layers)]
    assert result.patched.shape == (4, len(layers))
