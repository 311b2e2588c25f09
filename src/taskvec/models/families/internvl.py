"""InternVL 2.5 / 3 in transformers' own format (``model_type`` "internvl", the ``-hf`` checkpoints).

InternViT tower, pixel-shuffle (``downsample_ratio`` 0.5) and an MLP projector into a Qwen2 (or
Llama) language model at ``model.model.language_model``. The processor writes each image as
``<img>`` + ``<IMG_CONTEXT>`` x ``image_seq_length`` per tile + ``</img>``; with
``crop_to_patches`` an image becomes a grid of 448 px tiles (closest aspect ratio within
``min_patches..max_patches``) plus a thumbnail, so the token count depends on the image's shape.
``pixel_values`` are all tiles of the batch, ``[tiles, 3, H, W]``, in prompt order.

The original ``OpenGVLab/InternVL*`` repositories (``model_type`` "internvl_chat", remote code) are
not this format; use their ``-hf`` conversions.
"""

from __future__ import annotations

from taskvec.models.vlm import VisionLanguageAdapter, hf_family


class InternVLAdapter(VisionLanguageAdapter):
    """``InternVLForConditionalGeneration``: the placeholder is the processor's ``<IMG_CONTEXT>``."""


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"internvl": hf_family(InternVLAdapter, video_processor_class="InternVLProcessor")}
