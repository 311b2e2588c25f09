"""LLaVA-1.5 (``model_type`` "llava"): CLIP tower + projector, ``<image>`` expanded per patch."""

from __future__ import annotations

from taskvec.models.registry import register_family
from taskvec.models.vlm import VisionLanguageAdapter, hf_loader


class LlavaAdapter(VisionLanguageAdapter):
    """``LlavaForConditionalGeneration``: the language model is ``model.model.language_model``."""


load = hf_loader(LlavaAdapter)
register_family("llava", load)
