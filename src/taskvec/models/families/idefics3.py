"""Idefics3 (``model_type`` "idefics3") and SmolVLM (``model_type`` "smolvlm").

In transformers 5.23 SmolVLM has its own model type and classes (``SmolVLMForConditionalGeneration``,
``SmolVLMProcessor``) with Idefics3's layout: SigLIP tower, pixel-shuffle connector, the language
model at ``model.model.text_model``. The processor expands each ``<image>`` into
``<fake_token_around_image>`` + (per tile ``<row_r_col_c>``) + ``<global-img>`` + ``<image>`` x
``image_seq_len`` runs; pixel values are per prompt ``[batch, max_images, 3, H, W]`` with a
``pixel_attention_mask``, so text-only and image prompts can share a batch.
"""

from __future__ import annotations

from torch import nn

from taskvec.models.vlm import VisionLanguageAdapter, hf_family


class Idefics3Adapter(VisionLanguageAdapter):
    """``Idefics3ForConditionalGeneration`` / ``SmolVLMForConditionalGeneration``."""

    nested_images = True  # SmolVLM's processor wants one image list per prompt

    def language_model(self) -> nn.Module:
        return self.model.model.text_model


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {
    "idefics3": hf_family(Idefics3Adapter),
    "smolvlm": hf_family(Idefics3Adapter, video_processor_class="SmolVLMProcessor"),
}
