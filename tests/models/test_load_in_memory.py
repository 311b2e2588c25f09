"""taskvec.load_model on a transformers model already in memory: the family from its
config.model_type, the caller's tokenizer / processor untouched, a fingerprint of its weights."""

import copy

import pytest
import torch
from helpers.families.llava import build_llava
from helpers.tinyparts import make_tokenizer, seeded, tiny_text_config
from transformers import AutoConfig, AutoModelForCausalLM

import taskvec
from taskvec.errors import ModelSpecError
from taskvec.models.families.causal_lm import CausalLMAdapter
from taskvec.models.families.llava import LlavaAdapter
from taskvec.prompts.template import PAPER


def _hf_llama(seed: int = 3):
    tokenizer = make_tokenizer([])
    tokenizer.pad_token = None  # like many hub tokenizers: taskvec must not set one on the caller's
    tokenizer.padding_side = "right"
    config = AutoConfig.for_model(
        "llama",
        **tiny_text_config(hidden_size=32, num_hidden_layers=2, head_dim=8),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return seeded(AutoModelForCausalLM.from_config, config, seed=seed), tokenizer


def test_a_text_model_in_memory_loads_extracts_and_patches_without_touching_its_tokenizer():
    hf_model, tokenizer = _hf_llama()
    before = (tokenizer.padding_side, tokenizer.pad_token)
    assert before[0] == "right"
    model = taskvec.load_model(hf_model, tokenizer)
    assert isinstance(model, CausalLMAdapter) and model.model is hf_model
    prompts = [PAPER.icl([("a", "b"), ("c", "d")], q) for q in ("x", "yy", "zzz")]
    vector = taskvec.extract(model, prompts, task="toy", spec="text-icl")
    assert vector.meta.model_fingerprint == model.fingerprint != ""
    answers = taskvec.patch(model, [PAPER.query("e")], vector.at(1), layer=1)
    assert len(answers) == 1
    assert (tokenizer.padding_side, tokenizer.pad_token) == before


def test_the_fingerprint_is_a_hash_of_the_weights():
    one, tokenizer = _hf_llama(seed=3)
    same, _ = _hf_llama(seed=3)
    other, _ = _hf_llama(seed=4)
    fingerprint = taskvec.load_model(one, tokenizer).fingerprint
    assert fingerprint == taskvec.load_model(same, tokenizer).fingerprint
    assert fingerprint != taskvec.load_model(other, tokenizer).fingerprint
    with torch.no_grad():
        next(same.parameters())[0, 0] += 1
    assert fingerprint != taskvec.load_model(same, tokenizer).fingerprint


def test_a_vision_language_model_in_memory_keeps_the_callers_processor():
    built = build_llava()
    processor = copy.deepcopy(built.processor)
    processor.tokenizer.padding_side = "right"
    model = taskvec.load_model(built.model, processor)
    assert isinstance(model, LlavaAdapter)
    assert processor.tokenizer.padding_side == "right"
    vector = taskvec.extract(model, [PAPER.icl([("a", "b")], "c")], task="toy", spec="text-icl")
    assert vector.vectors.shape == (model.num_layers, model.hidden_size)


def test_extract_and_patch_refuse_a_bare_transformers_model_pointing_at_load_model():
    hf_model, tokenizer = _hf_llama()
    with pytest.raises(ModelSpecError, match=r"taskvec\.load_model\(hf_model, tokenizer"):
        taskvec.extract(hf_model, [PAPER.query("a")], task="toy", spec="text-icl")
    with pytest.raises(ModelSpecError, match="needs its tokenizer"):
        taskvec.load_model(hf_model)


def test_an_unknown_model_name_suggests_the_closest():
    with pytest.raises(ModelSpecError, match="did you mean 'smollm2-135m'"):
        taskvec.load_model("smollm-135m")


def test_a_family_finishes_its_lens_logits_through_finish_logits():
    """A VLM wrapper that does not apply its LLM's ``logit_scale`` needed the whole ``logit_lens``
    overridden (its lock included); ``finish_logits`` is the one step a family changes."""
    import torch
    from helpers.tinyllm import tiny_llm

    class Unscaled(CausalLMAdapter):
        def finish_logits(self, head_output: torch.Tensor) -> torch.Tensor:
            return head_output * 2

    plain = tiny_llm("llama")
    doubled = Unscaled(plain.model, plain.tokenizer, name="x", model_id="x")
    hidden = torch.randn(2, plain.hidden_size)
    torch.testing.assert_close(doubled.logit_lens(hidden), 2 * plain.logit_lens(hidden))
