"""The report says LLM -> VLM transfer holds "by construction" only when the LLM is the VLM's own
language model, frozen: another LLM (``--llm``) or a tuned language model is a real test."""

from __future__ import annotations

import pytest
from helpers.tinyllm import tiny_llm, tiny_text_lm

from taskvec.models.embedded.load import assemble
from taskvec.models.embedded.model import EntityNameProjector
from taskvec.models.families.causal_lm import CausalLMAdapter
from taskvec.models.vision.efficientnet_lite import EfficientNetLite0
from taskvec.pipelines.reproduce import transfer_is_by_construction


def _embedded(llm, tuned: bool):
    projector = EntityNameProjector(2, llm.hidden_size, tokens_per_image=2, visual_rank=4)
    return assemble(
        llm, EfficientNetLite0(), projector, "tiny-vlm", "test", 32, base_llm=llm.name, tuned=tuned
    )


@pytest.fixture(scope="module")
def llm():
    return tiny_text_lm("gemma3-hybrid")


def test_the_frozen_vlms_own_language_model_is_transfer_by_construction(llm):
    assert transfer_is_by_construction(_embedded(llm, tuned=False), llm)


def test_another_llm_or_a_tuned_language_model_is_a_real_test(llm):
    assert not transfer_is_by_construction(
        _embedded(llm, tuned=False), tiny_llm("llama", hidden=32, layers=3)
    )
    assert not transfer_is_by_construction(_embedded(llm, tuned=True), llm)


def test_the_same_weights_loaded_again_are_its_language_model_too(llm):
    """``--llm`` naming the very LLM the VLM is built on loads it anew: same weights, same verdict."""

    def wrapped(fingerprint: str) -> CausalLMAdapter:
        return CausalLMAdapter(
            llm.model, llm.tokenizer, name="base", model_id="base", fingerprint=fingerprint
        )

    vlm = _embedded(wrapped("f00d"), tuned=False)
    assert transfer_is_by_construction(vlm, wrapped("f00d"))
    assert not transfer_is_by_construction(vlm, wrapped("beef"))
