"""Qwen2-VL (``model_type`` "qwen2_vl"): dynamic-resolution ViT, 3-D multimodal rope (M-RoPE).

Positions are the delicate part. Image tokens get (temporal, height, width) positions and the text
after an image continues from ``max(h, w) / merge`` past the image's start, not from its token
count, so positions are not ``cumsum(mask) - 1``. transformers 5.23 computes them in
``Qwen2VLModel.get_rope_index(input_ids, mm_token_type_ids, image_grid_thw, ..., attention_mask)``
(``mm_token_type_ids``: 0 text, 1 image, made by the processor) and, in a cached step, adds the
stored ``rope_deltas`` to ``cumsum(mask) - 1``. The adapter calls ``get_rope_index`` once per
encoded batch and passes explicit ``[3, batch, seq]`` position ids to every forward: the full
pass, the prefix pass (its first ``seq - 1`` columns, which only depend on earlier tokens) and the
cached last-token step (the last column). So the cached sweep sees exactly the positions of a full
forward, and the model's own ``rope_deltas`` state is never consulted.
"""

from __future__ import annotations

import torch

from taskvec.models.adapter import Encoded
from taskvec.models.vlm import VisionLanguageAdapter, hf_family

ROPE_KEY = "rope_position_ids"  # [batch, seq, 3] in Encoded.extra: a per-token input


class Qwen2VLAdapter(VisionLanguageAdapter):
    """``Qwen2VLForConditionalGeneration``; text model at ``model.model.language_model``."""

    per_token_keys = (*VisionLanguageAdapter.per_token_keys, ROPE_KEY)

    def image_placeholder(self) -> str:
        # the chat template's convention: <|vision_start|><|image_pad|><|vision_end|>
        config = self.model.config
        start, end = self.tokenizer.convert_ids_to_tokens(
            [config.vision_start_token_id, config.vision_end_token_id]
        )
        return f"{start}{self.processor.image_token}{end}"

    def finish_encoding(self, encoded: Encoded) -> Encoded:
        if ROPE_KEY not in encoded.extra:  # a grown batch carries them already (see below)
            encoded.extra[ROPE_KEY] = self.rope_positions(encoded).permute(1, 2, 0).contiguous()
        return encoded

    def generated_token_inputs(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """A generated token is text after the prompt's last (text) token: one past it on every
        axis, as ``get_rope_index`` counts text (tested against it). Its images are not needed."""
        if key == ROPE_KEY:
            return value[:, -1:] + 1
        return super().generated_token_inputs(key, value)

    def rope_positions(self, encoded: Encoded) -> torch.Tensor:
        """``[3, batch, seq]`` M-RoPE positions, as transformers computes them for a full forward."""
        extra = encoded.extra
        if extra.get("image_grid_thw") is None and extra.get("video_grid_thw") is None:
            # text only: every axis is the plain position (what get_rope_index gives for text)
            return encoded.position_ids().unsqueeze(0).expand(3, -1, -1)
        with torch.no_grad():
            positions, _deltas = self.model.model.get_rope_index(
                input_ids=encoded.input_ids,
                mm_token_type_ids=extra["mm_token_type_ids"],
                image_grid_thw=extra.get("image_grid_thw"),
                video_grid_thw=extra.get("video_grid_thw"),
                attention_mask=encoded.attention_mask,
            )
        return positions

    def _positions(self, encoded: Encoded) -> torch.Tensor:
        rope = encoded.extra.get(ROPE_KEY)
        if rope is None:
            return self.rope_positions(encoded)
        return rope[:, : encoded.seq_len].permute(2, 0, 1)  # [3, batch, seq]

    def full_inputs(self, encoded: Encoded) -> dict:
        inputs = super().full_inputs(encoded)
        inputs.pop(ROPE_KEY, None)
        inputs["position_ids"] = self._positions(encoded)
        return inputs

    def last_token_inputs(self, encoded: Encoded) -> dict:
        return {
            "input_ids": encoded.input_ids[:, -1:],
            "attention_mask": encoded.attention_mask,
            "position_ids": self._positions(encoded)[:, :, -1:],
        }


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"qwen2_vl": hf_family(Qwen2VLAdapter, video_processor_class="Qwen2VLProcessor")}
