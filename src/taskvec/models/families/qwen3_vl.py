"""Qwen3-VL (``model_type`` "qwen3_vl"): Qwen2-VL's prompt format and M-RoPE (interleaved over the
head dimension), 16 px patches, and DeepStack: features from early vision layers are added to the
image positions' hidden states after the first decoder layers.

``get_rope_index`` keeps Qwen2-VL's contract (``mm_token_type_ids``, ``image_grid_thw``, attention
mask), so the Qwen2-VL adapter serves unchanged. DeepStack touches image positions only, all of
them in the prefix: the cached last-token step (a text token) is exact, and the states read at the
delimiter are the decoder layers' outputs as everywhere else.
"""

from __future__ import annotations

from taskvec.models.families.qwen2_vl import Qwen2VLAdapter
from taskvec.models.vlm import hf_family


class Qwen3VLAdapter(Qwen2VLAdapter):
    """``Qwen3VLForConditionalGeneration``."""


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"qwen3_vl": hf_family(Qwen3VLAdapter, video_processor_class="Qwen3VLProcessor")}
