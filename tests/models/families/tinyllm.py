"""Tiny base LLMs of any text ``model_type`` (Vicuna/Llama, Mistral, Qwen2, Gemma, ...), random."""

from __future__ import annotations

from tinyparts import make_tokenizer, seeded, tiny_text_config
from transformers import AutoConfig, AutoModelForCausalLM

from taskvec.models.families.causal_lm import CausalLMAdapter


def tiny_llm(model_type: str, hidden: int = 32, layers: int = 2, seed: int = 3) -> CausalLMAdapter:
    tokenizer = make_tokenizer([])
    config = AutoConfig.for_model(
        model_type,
        **tiny_text_config(hidden_size=hidden, num_hidden_layers=layers, head_dim=8),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = seeded(AutoModelForCausalLM.from_config, config, seed=seed)
    return CausalLMAdapter(model, tokenizer, name=f"tiny-{model_type}-{hidden}", model_id="tiny")
