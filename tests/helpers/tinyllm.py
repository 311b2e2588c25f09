"""The tiny random text LMs of the tests, all built by one builder: base LLMs of any text
``model_type`` (Vicuna/Llama, Mistral, Qwen2, Gemma, ...) and one LM per attention / norm /
position scheme the engine must handle (``ARCHITECTURES``)."""

from __future__ import annotations

from transformers import AutoConfig, AutoModelForCausalLM

from helpers.tinyparts import make_tokenizer, seeded, tiny_text_config
from taskvec.models.families.causal_lm import CausalLMAdapter
from taskvec.models.registry import families
from taskvec.prompts.template import PAPER


def _tiny(model_type: str, options: dict, seed: int, name: str) -> CausalLMAdapter:
    """The one builder: a random ``model_type`` LM of config ``options`` on the byte tokenizer."""
    tokenizer = make_tokenizer([])
    config = AutoConfig.for_model(
        model_type,
        **options,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = seeded(AutoModelForCausalLM.from_config, config, seed=seed)
    family = families().get(model_type)  # a text family in a file of its own has its own adapter
    adapter_class = family.adapter_class if family is not None else CausalLMAdapter
    return adapter_class(model, tokenizer, name=name, model_id="tiny")


def tiny_llm(model_type: str, hidden: int = 32, layers: int = 2, seed: int = 3) -> CausalLMAdapter:
    """A base LLM of ``model_type`` (e.g. the text half of a tiny VLM, for LLM -> VLM transfer)."""
    options = tiny_text_config(hidden_size=hidden, num_hidden_layers=layers, head_dim=8)
    return _tiny(model_type, options, seed, name=f"tiny-{model_type}-{hidden}")


# --- one tiny text LM per attention / norm / position scheme (the engine's tests run on each) ---

TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4, vocab_size=320)
ARCHITECTURES = {
    "llama-gqa": dict(model_type="llama", num_key_value_heads=2),
    "qwen2-sliding": dict(
        model_type="qwen2", num_key_value_heads=2, use_sliding_window=True, sliding_window=3
    ),
    "mistral-sliding": dict(model_type="mistral", num_key_value_heads=1, sliding_window=4),
    "gemma2-softcap": dict(
        model_type="gemma2",
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=3,
        final_logit_softcapping=5.0,
        attn_logit_softcapping=10.0,
        query_pre_attn_scalar=8,
    ),
    "gemma3-hybrid": dict(
        model_type="gemma3_text",
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=3,
        query_pre_attn_scalar=8,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
    ),
    "persimmon-partial-rotary": dict(model_type="persimmon", partial_rotary_factor=0.5, qk_layernorm=True),
    "qwen3-qk-norm": dict(model_type="qwen3", num_key_value_heads=2, head_dim=8),
    # (at the default initializer_range a tiny Gemma answers one token to everything)
    "gemma-scaled-embeddings": dict(
        model_type="gemma", num_key_value_heads=1, head_dim=8, initializer_range=0.2
    ),
    "phi3-fused-qkv": dict(model_type="phi3", num_key_value_heads=2),
}


def tiny_text_lm(name: str) -> CausalLMAdapter:
    """The tiny LM of one scheme of ``ARCHITECTURES`` (4 layers)."""
    options = dict(TEXT, **ARCHITECTURES[name])
    return _tiny(options.pop("model_type"), options, seed=1, name=f"tiny-{name}")


WORDS = ["cat", "a dog", "red sun", "sky", "the tall tree", "Peru"]


def text_queries(count: int = 5):
    return [PAPER.query(WORDS[i % len(WORDS)]) for i in range(count)]  # uneven lengths: left padding
