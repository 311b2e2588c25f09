"""Text-only causal LMs from transformers (Llama, SmolLM2, Gemma 3, Qwen2, Mistral, ...).

They share one layout (``get_decoder().layers``, ``get_decoder().norm``, the LM head), so one
adapter serves them all; the base LLMs of the VLM families use it for LLM -> VLM transfer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from taskvec.errors import ModelSpecError
from taskvec.models.adapter import Encoded, ModelAdapter
from taskvec.models.loading import Family, LoadOptions, weights_fingerprint
from taskvec.prompts.template import Prompt


class CausalLMAdapter(ModelAdapter):
    """Adapter for ``AutoModelForCausalLM`` text models."""

    def __init__(self, model: nn.Module, tokenizer, name: str, model_id: str, fingerprint: str = ""):
        super().__init__(model, name, model_id, fingerprint)
        self.use_tokenizer(tokenizer)

    @property
    def layers(self) -> nn.ModuleList:
        return self.model.get_decoder().layers

    @property
    def text_config(self):
        return self.model.config.get_text_config()

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    def text_of(self, prompt: Prompt) -> str:
        if any(not isinstance(segment, str) for segment in prompt):
            raise ModelSpecError(
                f"{self.name} is a text-only model and cannot read image segments; "
                "use a vision-language model for image prompts"
            )
        return "".join(prompt)

    def encode(self, prompts: Sequence[Prompt]) -> Encoded:
        texts = [self.text_of(p) for p in prompts]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True)
        return Encoded(batch["input_ids"], batch["attention_mask"]).to(self.device)

    def token_count(self, prompt: Prompt) -> int:
        return len(self.tokenizer(self.text_of(prompt))["input_ids"])

    continues_cached_prefix = True

    def continuation(self, prefix: Prompt, prompt: Prompt) -> tuple[list[int], dict[str, torch.Tensor]]:
        ids = self.tokenizer([self.text_of(prefix), self.text_of(prompt)])["input_ids"]
        return self._rest(ids[0], ids[1]), {}

    def final_norm(self) -> nn.Module:
        return self.model.get_decoder().norm

    def unembedding(self) -> nn.Module:
        return self.model.get_output_embeddings()


def text_family(adapter_class: type[CausalLMAdapter] = CausalLMAdapter) -> Family:
    """A text family's ``MODEL_TYPES`` entry: its adapter (``CausalLMAdapter`` or a subclass, for a
    model laid out otherwise), loading with AutoModelForCausalLM and AutoTokenizer; a family in a
    file of its own writes ``MODEL_TYPES = {"phi": text_family(PhiAdapter)}``."""

    def load(model_id: str, options: LoadOptions) -> CausalLMAdapter:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(model_id, **options.hf_kwargs())
        tokenizer = AutoTokenizer.from_pretrained(model_id)
        fingerprint = weights_fingerprint(model_id, options)
        return adapter_class(model, tokenizer, name=model_id, model_id=model_id, fingerprint=fingerprint)

    load.__doc__ = f"Load a {adapter_class.__name__} text model from a hub id or local folder."
    return Family(load, adapter_class)


#: text-only model types served by ``CausalLMAdapter``: the base LLMs of the VLM families (Vicuna and
#: Llama are "llama"; Mistral, Qwen2 / 2.5, Qwen3, Gemma 1 / 2 / 3, Phi-3) for LLM -> VLM transfer
TEXT_FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3")

#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = dict.fromkeys(TEXT_FAMILIES, text_family())
