"""LLaVA-1.5 (``model_type`` "llava"): CLIP tower + projector, ``<image>`` expanded per patch."""

from __future__ import annotations

from taskvec.models.vlm import VisionLanguageAdapter, hf_loader


class LlavaAdapter(VisionLanguageAdapter):
    """``LlavaForConditionalGeneration``: the language model is ``model.model.language_model``."""


load = hf_loader(LlavaAdapter)

#: the HF model types this family serves, and their loaders (found by models.registry)
MODEL_TYPES = {"llava": load}
