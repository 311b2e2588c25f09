"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL on tiny random models.

Images are resized to about 56 x 84 px (aspect kept, multiples of patch x merge), patchified
(14 px, or 16 px for Qwen3-VL) and merged 2 x 2: a 4 x 6 patch grid -> 6 ``<|image_pad|>``
tokens between ``<|vision_start|>`` and ``<|vision_end|>``.

The focus here is M-RoPE: the cached last-token step must use the 3-D positions transformers
computes for a full forward (``get_rope_index``), which differ from ``cumsum(mask) - 1`` after an
image.
"""

from functools import cache, partial

from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLProcessor,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from helpers.contract import FamilyCase
from helpers.tinyparts import make_tokenizer, seeded, tiny_text_config
from taskvec.models.families.qwen2_5_vl import Qwen25VLAdapter
from taskvec.models.families.qwen2_vl import Qwen2VLAdapter
from taskvec.models.families.qwen3_vl import Qwen3VLAdapter
from taskvec.models.vlm import without_video

SPECIALS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


TOKENS = 6  # a 4 x 6 patch grid merged 2 x 2


def build(family: str) -> Qwen2VLAdapter:
    tokenizer = make_tokenizer(SPECIALS, add_bos=False)
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in SPECIALS}
    patch = 16 if family == "qwen3_vl" else 14
    side = 4 * patch  # min = max pixels: about side x side, aspect kept
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=side * side, max_pixels=side * side, patch_size=patch, merge_size=2, temporal_patch_size=2
    )
    rope = {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0}
    text = dict(
        **tiny_text_config(), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    special_ids = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    vision = dict(
        depth=2, hidden_size=32, num_heads=4, patch_size=patch, spatial_merge_size=2, temporal_patch_size=2
    )
    if family == "qwen2_vl":
        config = Qwen2VLConfig(
            vision_config=dict(vision, embed_dim=32, mlp_ratio=2),
            text_config=dict(text, rope_parameters=rope),
            **special_ids,
        )
        classes = Qwen2VLForConditionalGeneration, Qwen2VLProcessor, Qwen2VLAdapter
    elif family == "qwen2_5_vl":
        config = Qwen2_5_VLConfig(
            vision_config=dict(
                vision, intermediate_size=64, out_hidden_size=32, window_size=28, fullatt_block_indexes=[1]
            ),
            text_config=dict(text, rope_parameters=rope),
            **special_ids,
        )
        classes = Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor, Qwen25VLAdapter
    else:
        config = Qwen3VLConfig(
            vision_config=dict(
                vision,
                intermediate_size=64,
                out_hidden_size=32,
                num_position_embeddings=16,
                deepstack_visual_indexes=[0],  # vision layer 0's features join after decoder layer 0
            ),
            text_config=dict(text, head_dim=8, rope_parameters=dict(rope, mrope_interleaved=True)),
            **special_ids,
        )
        classes = Qwen3VLForConditionalGeneration, Qwen3VLProcessor, Qwen3VLAdapter
    model_class, processor_class, adapter_class = classes
    processor = without_video(processor_class, image_processor=image_processor, tokenizer=tokenizer)
    return adapter_class.from_parts(seeded(model_class, config), processor, f"tiny-{family}")


CASES = [
    FamilyCase(family, cache(partial(build, family)), "<|image_pad|>", TOKENS, base_llm=base)
    for family, base in (("qwen2_vl", "qwen2"), ("qwen2_5_vl", "qwen2"), ("qwen3_vl", "qwen3"))
]
