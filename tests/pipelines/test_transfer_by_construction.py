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


def test_an_llm_whose_vectors_are_the_vlms_is_said_to_agree_by_construction(tmp_path, monkeypatch):
    """An HF VLM whose language model is the LLM unchanged (trained with it frozen, or ``--llm``
    naming that model) gave Table 4's LLM rows equal to its own and the claim "held" without a
    word: nothing but the vectors tells, so the vectors are compared."""
    import json

    from helpers.families import llava
    from transformers import LlamaForCausalLM

    from taskvec.pipelines import reproduce as reproduce_module
    from taskvec.pipelines.reproduce import ReproduceConfig, reproduce
    from taskvec.report.reproduce import write_report

    vlm = llava.build_llava()
    language_model = LlamaForCausalLM(vlm.model.config.text_config)
    language_model.model, language_model.lm_head = vlm.model.model.language_model, vlm.model.lm_head
    same = CausalLMAdapter(language_model.eval(), vlm.processor.tokenizer, name="its-llm", model_id="x")
    monkeypatch.setattr(reproduce_module, "base_llm", lambda *_args: same)
    config = ReproduceConfig.create(quick=True, tasks=["country_capital"], styles=["noto"])
    write_report(reproduce(config, tmp_path, adapter=vlm, show_progress=False))
    context = json.loads((tmp_path / "report_context.json").read_text())
    assert context["llm_vectors_equal_the_vlms"] and not context["llm_is_the_frozen_language_model"]
    report = (tmp_path / "report.md").read_text()
    assert "so the two rows agree by construction and are no evidence of transfer" in report
    (claim,) = [line for line in report.splitlines() if "LLM -> VLM xPatch about as good" in line]
    # a random model scores 0.00 on both sides: the claim is not judged at all
    assert claim.count("| not judged ") == 2 and "nothing to compare" in claim  # by both metrics
