"""LLaVA-NeXT (``model_type`` "llava_next"): any-resolution tiling. Each image becomes a base
view plus a grid of crops chosen from ``image_grid_pinpoints``, with an ``image_newline`` token
after each row of features; the processor computes that count from ``image_sizes`` and expands
``<image>`` to match. ``pixel_values`` are ``[images, crops, 3, H, W]`` plus ``image_sizes``."""

from __future__ import annotations

from taskvec.models.vlm import VisionLanguageAdapter, hf_family


class LlavaNextAdapter(VisionLanguageAdapter):
    """``LlavaNextForConditionalGeneration``; text model ``model.model.language_model``."""


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"llava_next": hf_family(LlavaNextAdapter)}
