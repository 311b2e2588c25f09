"""LLaVA-1.5 (``model_type`` "llava"): CLIP tower + projector, ``<image>`` expanded per patch."""

from __future__ import annotations

from taskvec.models.families.vlm import VisionLanguageAdapter, hf_loader
from taskvec.models.registry import register_family


class LlavaAdapter(VisionLanguageAdapter):
    """``LlavaForConditionalGeneration``: the language model is ``model.model.language_model``."""


load = hf_loader(LlavaAdapter)
register_family("llava", load)
