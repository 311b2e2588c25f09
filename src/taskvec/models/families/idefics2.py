"""Idefics2 (``model_type`` "idefics2"): SigLIP tower + perceiver resampler (a fixed number of
latents per image), language model at ``model.model.text_model``. The processor writes each image
as ``<fake_token_around_image>`` + ``<image>`` x ``image_seq_len`` + ``<fake_token_around_image>``
(twice that per image with ``do_image_splitting``)."""

from __future__ import annotations

from torch import nn

from taskvec.models.vlm import VisionLanguageAdapter, hf_family


class Idefics2Adapter(VisionLanguageAdapter):
    """``Idefics2ForConditionalGeneration``."""

    def language_model(self) -> nn.Module:
        return self.model.model.text_model


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"idefics2": hf_family(Idefics2Adapter)}
