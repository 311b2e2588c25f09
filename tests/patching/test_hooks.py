"""Hooks on the real SmolLM2: patching is exact where it should be and leaves no trace."""

import pytest
import torch

from taskvec.patching.hooks import patching_last_token, recording_last_token
from taskvec.prompts.template import SPACED

PROMPTS = [
    SPACED.icl([("France", "Paris"), ("Japan", "Tokyo")], "Italy"),
    SPACED.query("Peru"),
]


def _hidden_all_positions(adapter, encoded):
    records = {}

    def hook(_m, _i, output):
        records["h"] = (output[0] if isinstance(output, tuple) else output).clone()

    handle = adapter.layers[-1].register_forward_hook(hook)
    try:
        logits = adapter.model(**adapter.full_inputs(encoded), logits_to_keep=0).logits
    finally:
        handle.remove()
    return logits, records["h"]


@torch.no_grad()
def test_patching_a_prompts_own_activation_changes_nothing(smollm2):
    encoded = smollm2.encode(PROMPTS)
    with recording_last_token(smollm2.layers) as own:
        clean = smollm2.forward(encoded).logits
    rows = torch.arange(len(PROMPTS))
    for layer in (0, 12, smollm2.num_layers - 1):
        with patching_last_token(smollm2.layers, {layer: (rows, own[layer])}):
            patched = smollm2.forward(encoded).logits
        torch.testing.assert_close(patched, clean, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_patching_changes_only_the_last_position(smollm2):
    encoded = smollm2.encode(PROMPTS)
    clean_logits, clean_hidden = _hidden_all_positions(smollm2, encoded)
    rows = torch.arange(len(PROMPTS))
    noise = torch.randn(len(PROMPTS), smollm2.hidden_size) * 5
    with patching_last_token(smollm2.layers, {10: (rows, noise)}):
        patched_logits, patched_hidden = _hidden_all_positions(smollm2, encoded)
    torch.testing.assert_close(patched_hidden[:, :-1], clean_hidden[:, :-1])
    assert not torch.allclose(patched_hidden[:, -1], clean_hidden[:, -1])
    assert not torch.allclose(patched_logits[:, -1], clean_logits[:, -1])


@torch.no_grad()
def test_hooks_are_removed_even_when_the_forward_fails(smollm2):
    encoded = smollm2.encode(PROMPTS)
    rows = torch.arange(len(PROMPTS))
    with (
        pytest.raises(RuntimeError),
        patching_last_token(smollm2.layers, {3: (rows, torch.zeros(len(PROMPTS), smollm2.hidden_size + 1))}),
    ):
        smollm2.forward(encoded)
    assert all(not layer._forward_hooks for layer in smollm2.layers)
    with pytest.raises(KeyError), recording_last_token(smollm2.layers):
        raise KeyError("boom")
    assert all(not layer._forward_hooks for layer in smollm2.layers)


@torch.no_grad()
def test_additive_mode_adds_a_scaled_vector(smollm2):
    encoded = smollm2.encode(PROMPTS[:1])
    with recording_last_token(smollm2.layers) as clean:
        smollm2.forward(encoded)
    vector = torch.randn(1, smollm2.hidden_size)
    with (
        patching_last_token(smollm2.layers, {5: (torch.tensor([0]), vector)}, mode="add", scale=0.5),
        recording_last_token(smollm2.layers) as patched,
    ):
        smollm2.forward(encoded)
    torch.testing.assert_close(patched[5], clean[5] + 0.5 * vector, rtol=1e-5, atol=1e-5)
