"""A model dispatched by accelerate with layers and the LM head offloaded to disk (what
``--device-map auto`` does when a model is larger than its GPUs) runs through accelerate's hooks,
which bring each module's weights in for its forward. Extraction, the sweep and generated answers
must equal the plain model's, token for token."""

from __future__ import annotations

import pytest
import torch
from helpers.tinyllm import tiny_llm
from transformers import AutoModelForCausalLM

from taskvec.models.families.causal_lm import CausalLMAdapter
from taskvec.patching.patch import Patch, generate_ids, generate_ids_under_patches, line_complete
from taskvec.patching.sweep import sweep
from taskvec.vectors.extract import last_token_states

DEMOS = "Q:France\nA:Paris\n\nQ:Spain\nA:Madrid\n\n"
PROMPTS = [[DEMOS + "Q:Italy\nA:"], [DEMOS + "Q:Peru\nA:"], [DEMOS + "Q:Chad\nA:"]]
QUERIES = [["Q:Italy\nA:"], ["Q:Peru and Chile\nA:"], ["Q:Chad\nA:"]]


def _results(adapter) -> dict:
    states = last_token_states(adapter, PROMPTS)
    vectors = states.mean(0)
    swept = sweep(adapter, QUERIES, vectors, list(range(adapter.num_layers)))
    patch = Patch(adapter.num_layers - 1, vectors[-1])
    until = line_complete(adapter)
    return {
        "states": states,
        "patched": swept.patched,
        "clean": swept.clean,
        "answers": generate_ids(adapter, QUERIES, patch, 5, until=until),
        "under patches": generate_ids_under_patches(adapter, QUERIES, [None, patch], 5, until=until),
    }


@pytest.mark.parametrize("head", ["cpu", "disk"])
def test_an_offloaded_model_computes_what_the_plain_model_computes(head, tmp_path):
    plain = tiny_llm("llama", layers=3)
    plain.model.save_pretrained(tmp_path / "model")
    device_map = {
        "model.embed_tokens": "cpu",
        "model.rotary_emb": "cpu",
        "model.layers.0": "cpu",
        "model.layers.1": "disk",
        "model.layers.2": "disk",
        "model.norm": "cpu",
        "lm_head": head,
    }
    model = AutoModelForCausalLM.from_pretrained(
        tmp_path / "model", device_map=device_map, offload_folder=tmp_path / "offload", dtype=torch.float32
    )
    assert "disk" in set(model.hf_device_map.values())
    offloaded = CausalLMAdapter(model, plain.tokenizer, name="offloaded", model_id="offloaded")
    fingerprint = offloaded.fingerprint
    expected, got = _results(plain), _results(offloaded)
    # accelerate's hooks swap the offloaded weights in and out: that is no change of weights
    assert offloaded.fingerprint == fingerprint
    assert torch.equal(got.pop("states"), expected.pop("states"))
    assert torch.equal(got.pop("patched"), expected.pop("patched"))
    assert torch.equal(got.pop("clean"), expected.pop("clean"))
    assert got == expected
