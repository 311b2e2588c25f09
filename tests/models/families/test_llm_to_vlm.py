"""LLM -> VLM transfer: a task vector from a text model of the same width patches into a VLM;
a vector of another width is refused before any forward pass."""

import pytest
import torch
from test_llava import build_llava
from tinyparts import image_query, make_tokenizer, seeded, text_icl, text_query, tiny_text_config
from transformers import LlamaConfig, LlamaForCausalLM

from taskvec.errors import VectorMismatchError
from taskvec.models.families.causal_lm import CausalLMAdapter
from taskvec.patching.patch import Patch, first_token_ids
from taskvec.patching.sweep import sweep, sweep_naive
from taskvec.vectors.extract import last_token_states

torch.set_num_threads(1)


def text_model(hidden: int) -> CausalLMAdapter:
    tokenizer = make_tokenizer([])
    config = LlamaConfig(**tiny_text_config(hidden_size=hidden, num_hidden_layers=2))
    return CausalLMAdapter(
        seeded(LlamaForCausalLM, config, seed=3), tokenizer, name=f"tiny-llama-{hidden}", model_id="x"
    )


@pytest.fixture(scope="module")
def vlm():
    return build_llava()


def test_a_same_width_text_vector_patches_into_the_vlm(vlm):
    llm = text_model(vlm.hidden_size)
    vectors = last_token_states(llm, [text_icl(0), text_icl(1)]).mean(0)  # [2 layers, hidden]
    patch = Patch(1, vectors[-1])
    patch.check(vlm)
    queries = [image_query(0), text_query(1)]
    assert len(first_token_ids(vlm, queries, patch)) == 2
    layers = [0, 1]
    fast = sweep(vlm, queries, vectors, layers)
    naive = sweep_naive(vlm, queries, vectors, layers)
    assert torch.equal(fast.patched, naive.patched)


def test_a_different_width_is_refused(vlm):
    llm = text_model(48)
    vector = last_token_states(llm, [text_icl(0)])[0, -1]
    with pytest.raises(VectorMismatchError, match="32 wide"):
        Patch(1, vector).check(vlm)
    with pytest.raises(VectorMismatchError):
        first_token_ids(vlm, [image_query(0)], Patch(1, vector))
