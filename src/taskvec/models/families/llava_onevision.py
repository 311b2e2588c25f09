"""LLaVA-OneVision (``model_type`` "llava_onevision"): LLaVA-NeXT's any-resolution tiling with
SigLIP and the ``anyres_max_9`` policy (crops are pooled down when there are too many). The
processor also has a video part, which needs torchvision in transformers 5.23; the loader falls
back to an images-only processor when it cannot build one."""

from __future__ import annotations

from taskvec.models.families.llava_next import LlavaNextAdapter
from taskvec.models.vlm import hf_family


class LlavaOnevisionAdapter(LlavaNextAdapter):
    """``LlavaOnevisionForConditionalGeneration``."""


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {
    "llava_onevision": hf_family(LlavaOnevisionAdapter, video_processor_class="LlavaOnevisionProcessor")
}
