"""PaliGemma (``model_type`` "paligemma"): SigLIP tower + Gemma, a prefix-LM.

PaliGemma attends *bidirectionally* within the prefix (everything the processor marks with
``token_type_ids == 0``: the images and the prompt), causally only within the suffix it generates.
So the prompt's earlier tokens see its last token: patching the delimiter changes the states of
earlier positions in later layers, and a KV cache of the prefix computed without the last token is
not what a full forward computes. ``prefix_cache_is_exact`` is therefore False and
``taskvec.patching.sweep.sweep`` falls back to ``sweep_naive`` (a full forward per layer).

Encoding follows the processor's format, ``<image> x N`` (per leading image) + ``<bos>`` + text,
with two deliberate differences: the processor's trailing ``"\\n"`` (the prefix/suffix separator)
is left out, so the prompt ends at the delimiter like every other family's; and images that are
not at the start (ICL examples) are expanded in place. Positions are 1-based, as in
``PaliGemmaModel`` (it adds 1 to ``arange`` when no positions are given).
"""

from __future__ import annotations

import torch

from taskvec.models.adapter import Encoded
from taskvec.models.vlm import VisionLanguageAdapter, hf_family


class PaliGemmaAdapter(VisionLanguageAdapter):
    """``PaliGemmaForConditionalGeneration``; text model ``model.model.language_model``."""

    @property
    def prefix_cache_is_exact(self) -> bool:
        return False  # bidirectional prefix: the last token is seen by the tokens before it

    def run_processor(self, texts, images) -> dict:
        tokenizer = self.tokenizer
        expanded_image = self.processor.image_token * self.processor.image_seq_length
        placeholder = self.image_placeholder()
        full_texts = []
        for text in texts:
            leading = 0
            while text.startswith(placeholder):
                text = text[len(placeholder) :]
                leading += 1
            body = text.replace(placeholder, expanded_image)
            full_texts.append(expanded_image * leading + tokenizer.bos_token + body)
        batch = tokenizer(
            full_texts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt"
        )
        out = {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            # 0 = prefix: the whole prompt is the bidirectional prefix, as the processor marks it
            "token_type_ids": torch.zeros_like(batch["input_ids"]),
        }
        flat = [img for per_prompt in images for img in per_prompt]
        if flat:
            out["pixel_values"] = self.processor.image_processor(flat, return_tensors="pt")["pixel_values"]
        return out

    def generated_token_inputs(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """Generated tokens are the suffix (type 1): causal, unseen by the prefix."""
        return torch.ones_like(value[:, -1:])

    def full_inputs(self, encoded: Encoded) -> dict:
        inputs = super().full_inputs(encoded)
        inputs["position_ids"] = inputs["position_ids"] + 1
        return inputs

    def last_token_inputs(self, encoded: Encoded) -> dict:
        inputs = super().last_token_inputs(encoded)
        inputs["position_ids"] = inputs["position_ids"] + 1
        return inputs


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"paligemma": hf_family(PaliGemmaAdapter)}
