"""LLaVA-1.5 (``model_type`` "llava"): CLIP tower + projector, ``<image>`` expanded per patch."""

from __future__ import annotations

from taskvec.models.vlm import VisionLanguageAdapter, hf_family


class LlavaAdapter(VisionLanguageAdapter):
    """``LlavaForConditionalGeneration``: the language model is ``model.model.language_model``."""


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"llava": hf_family(LlavaAdapter)}
