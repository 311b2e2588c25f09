"""Qwen2.5-VL (``model_type`` "qwen2_5_vl"): Qwen2-VL's layout and M-RoPE with a windowed ViT.

``get_rope_index`` has the same contract (plus ``second_per_grid_ts`` for videos, unused for
images), so the Qwen2-VL adapter serves it unchanged.
"""

from __future__ import annotations

from taskvec.models.families.qwen2_vl import Qwen2VLAdapter
from taskvec.models.vlm import hf_family


class Qwen25VLAdapter(Qwen2VLAdapter):
    """``Qwen2_5_VLForConditionalGeneration``."""


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"qwen2_5_vl": hf_family(Qwen25VLAdapter, video_processor_class="Qwen2_5_VLProcessor")}
