"""Gemma 3 with vision (``model_type`` "gemma3", ``Gemma3ForConditionalGeneration``).

The processor replaces each ``<start_of_image>`` by ``\\n\\n<start_of_image>`` + ``<image_soft_token>``
x ``mm_tokens_per_image`` + ``<end_of_image>\\n\\n`` and returns ``token_type_ids`` (1 on image
tokens). With them the model lets each image block attend to itself bidirectionally; everything
else is causal. The delimiter is text, so every image block lies wholly in the prefix: the prefix
cache is exact, and the last-token step needs no ``token_type_ids`` (transformers' own generate
drops them after the first step too).
"""

from __future__ import annotations

from taskvec.models.vlm import VisionLanguageAdapter, hf_family


class Gemma3Adapter(VisionLanguageAdapter):
    """``Gemma3ForConditionalGeneration``; text model ``model.model.language_model``."""

    nested_images = True  # the processor counts images per prompt


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"gemma3": hf_family(Gemma3Adapter)}
