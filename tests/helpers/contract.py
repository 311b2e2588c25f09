"""What every vision-language family must do, written once.

A family test module declares ``CASES``: one ``FamilyCase`` per ``model_type`` (its tiny model and
what its processor does with one test image). ``test_contract.py`` runs every check below on every
case; the family module keeps only what is peculiar to the family.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass

import torch

from helpers.tinyparts import image_count
from taskvec.analysis.lens import lens_logits
from taskvec.models.adapter import Encoded
from taskvec.models.cache_keyword import cache_of
from taskvec.models.vlm import VisionLanguageAdapter
from taskvec.patching.hooks import hidden_of, patching_last_token
from taskvec.patching.patch import Patch, first_token_ids
from taskvec.patching.sweep import sweep, sweep_naive
from taskvec.prompts.template import Prompt
from taskvec.vectors.extract import last_token_states


@dataclass(frozen=True)
class FamilyCase:
    """One family's tiny model and the facts the shared checks compare it against."""

    model_type: str
    build: Callable[[], VisionLanguageAdapter]  # cached: every test of the family shares one model
    image_token: str  # the placeholder token one image expands into (counted per image)
    tokens_per_image: int  # how many of them one 40 x 32 px test image becomes
    base_llm: str = "llama"  # model_type of the family's base LLM, for LLM -> VLM transfer
    patch_layer: int = 1  # a middle layer to patch in the causality check
    # False where a prompt's states are exact only in batches of prompts with as many images (Mllama)
    batches_mix_image_counts: bool = True
    # False where a text-only prompt is not just the language model's causal forward (PaliGemma)
    text_path_is_plain_lm: bool = True

    def __str__(self) -> str:
        return self.model_type

    def image_token_id(self, adapter: VisionLanguageAdapter) -> int:
        return int(adapter.tokenizer.convert_tokens_to_ids(self.image_token))


@contextmanager
def capturing_all(layers):
    """Every layer's full output ``[batch, seq, hidden]``."""
    records = [None] * len(layers)
    handles = []

    def hook_for(i):
        def hook(_module, _inputs, output):
            records[i] = hidden_of(output).detach().clone()

        return hook

    try:
        for i, layer in enumerate(layers):
            handles.append(layer.register_forward_hook(hook_for(i)))
        yield records
    finally:
        for handle in handles:
            handle.remove()


def count_tokens(encoded: Encoded, token_id: int) -> list[int]:
    return (encoded.input_ids == token_id).sum(-1).tolist()


def task_vectors(adapter, prompts: Sequence[Prompt]) -> torch.Tensor:
    """``[layers, hidden]``: the mean delimiter state of ICL prompts."""
    return last_token_states(adapter, prompts).mean(0)


def invariance_groups(case: FamilyCase, prompts: list[Prompt]) -> list[list[Prompt]]:
    """The batches in which each prompt must give the same states as alone."""
    if case.batches_mix_image_counts:
        return [prompts]
    counts = sorted({image_count(p) for p in prompts})
    return [[p for p in prompts if image_count(p) == n] for n in counts]


def check_last_token_is_delimiter(adapter, case: FamilyCase, prompts: list[Prompt]) -> None:
    """The position read for the vector and written by the patch is the ":" of the final "A:"."""
    encoded = adapter.encode(prompts)
    assert [adapter.decode([t]) for t in encoded.input_ids[:, -1].tolist()] == [":"] * len(prompts)
    for row in range(len(prompts)):
        assert adapter.decode(encoded.input_ids[row, -3:-1].tolist()).endswith("\nA")
    states = last_token_states(adapter, prompts)  # what extraction reads
    with torch.no_grad(), capturing_all(adapter.layers) as full:
        adapter.forward(encoded)
    for layer in range(adapter.num_layers):
        torch.testing.assert_close(states[:, layer], full[layer][:, -1].float())
    # left padding moves nothing: a prompt alone gives the state it has in a batch
    for group in invariance_groups(case, prompts):
        batched = last_token_states(adapter, group)
        for i, prompt in enumerate(group):
            alone = last_token_states(adapter, [prompt])
            torch.testing.assert_close(alone[0], batched[i], atol=1e-4, rtol=1e-4)


def _patched_and_clean(adapter, prompts: list[Prompt], layer: int):
    encoded = adapter.encode(prompts)
    vector = torch.randn(adapter.hidden_size, generator=torch.Generator().manual_seed(1)) * 3
    rows = torch.arange(len(prompts))
    with torch.no_grad():
        with capturing_all(adapter.layers) as clean:
            adapter.forward(encoded)
        with (
            patching_last_token(adapter.layers, {layer: (rows, vector.expand(len(prompts), -1))}),
            capturing_all(adapter.layers) as patched,
        ):
            adapter.forward(encoded)
    return vector, patched, clean


def check_patch_is_causal(adapter, prompts: list[Prompt], layer: int) -> None:
    """Patching the last token changes nothing before it, nor below ``layer``; it changes the last
    token from ``layer`` on."""
    vector, patched, clean = _patched_and_clean(adapter, prompts, layer)
    for i in range(adapter.num_layers):
        torch.testing.assert_close(patched[i][:, :-1], clean[i][:, :-1])
        if i < layer:
            torch.testing.assert_close(patched[i][:, -1], clean[i][:, -1])
        else:
            assert not torch.allclose(patched[i][:, -1], clean[i][:, -1])
    torch.testing.assert_close(patched[layer][:, -1], vector.expand(len(prompts), -1))


def check_patch_reaches_earlier_positions(adapter, prompts: list[Prompt], layer: int) -> None:
    """A bidirectional prefix: from the layer after the patch, earlier positions see the patch."""
    _vector, patched, clean = _patched_and_clean(adapter, prompts, layer)
    torch.testing.assert_close(patched[layer][:, :-1], clean[layer][:, :-1])
    assert not torch.allclose(patched[layer + 1][:, :-1], clean[layer + 1][:, :-1])


def cached_last_step(adapter, encoded: Encoded, repeats: int = 2):
    """The prefix run once into a cache, then the last token alone for ``repeats`` copies of each
    row: the adapter primitives a cached sweep is built from. Returns (logits, last-token states)."""
    with torch.no_grad():
        prefix = adapter.model(
            **adapter.full_inputs(adapter.prefix(encoded)), use_cache=True, logits_to_keep=1
        )
        cache = cache_of(prefix)
        cache.batch_repeat_interleave(repeats)
        with capturing_all(adapter.layers) as states:
            out = adapter.forward(
                adapter.rows(encoded, torch.arange(encoded.batch_size).repeat_interleave(repeats)),
                cache=cache,
                use_cache=True,
                last_only=True,
            )
    return out.logits[:, -1], [s[:, -1] for s in states]


def check_cached_step_equals_full_forward(adapter, prompts: list[Prompt]) -> None:
    encoded = adapter.encode(prompts)
    with torch.no_grad(), capturing_all(adapter.layers) as full_states:
        full = adapter.forward(encoded).logits[:, -1]
    logits, states = cached_last_step(adapter, encoded)
    for copy in range(2):
        torch.testing.assert_close(logits[copy::2], full, atol=1e-4, rtol=1e-4)
        for layer in range(adapter.num_layers):
            torch.testing.assert_close(
                states[layer][copy::2], full_states[layer][:, -1], atol=1e-4, rtol=1e-4
            )


def check_sweep_matches_naive(adapter, vectors: torch.Tensor, queries: list[Prompt]) -> None:
    """The fast sweep gives the paper's procedure's tokens. The vectors are pushed away from the
    model's own states first: a tiny random model's task vectors often change no answer, which
    would let a sweep that ignored the patch pass."""
    layers = list(range(adapter.num_layers))
    far = vectors + 3 * torch.randn(vectors.shape, generator=torch.Generator().manual_seed(2))
    fast = sweep(adapter, queries, far, layers)
    naive = sweep_naive(adapter, queries, far, layers)
    assert torch.equal(fast.patched, naive.patched)
    assert torch.equal(fast.clean, naive.clean)
    assert fast.clean.tolist() == first_token_ids(adapter, queries)  # clean = the model's own answer
    assert (fast.patched != fast.clean[:, None]).any(), "no patch changed any answer: a vacuous test"


def check_last_layer_patch_decodes_the_vector(adapter, vector: torch.Tensor, queries: list[Prompt]) -> None:
    """Patched at the last layer, every query answers what the logit lens reads from the vector:
    the vector really is the state the head reads, whatever the query's modality."""
    last = adapter.num_layers - 1
    expected = int(adapter.logit_lens(vector[last]).argmax())
    assert first_token_ids(adapter, queries, Patch(last, vector[last])) == [expected] * len(queries)


def check_logit_lens_is_the_models_own_read_out(adapter, queries: list[Prompt]) -> None:
    """The logit lens of the last layer's output at the last token is the model's own logits,
    values and not only their argmax: a lens that left out what the model does after its head
    (Gemma 2's soft-capping) gave the right tokens at the wrong probabilities. The head is scaled
    up first on a copy, so the logits are large enough for a cap to change them."""
    adapter = deepcopy(adapter)
    with torch.no_grad():
        adapter.unembedding().weight.mul_(20)
        own = adapter.forward(adapter.encode(queries)).logits[:, -1].float()
    states = last_token_states(adapter, queries)  # [queries, layers, hidden]
    lens = lens_logits(adapter, states[:, -1])
    torch.testing.assert_close(lens, own.cpu(), atol=1e-3, rtol=1e-4)
