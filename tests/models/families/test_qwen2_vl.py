"""Qwen2-VL and Qwen2.5-VL adapters on tiny random models (56 px images -> 4x4 patches -> 4 tokens).

The focus is M-RoPE: the cached last-token step must use the 3-D positions transformers computes
for a full forward (``get_rope_index``), which differ from ``cumsum(mask) - 1`` after an image.
"""

import pytest
import torch
from tinyparts import (
    check_last_token_is_delimiter,
    check_patch_is_causal,
    check_runs,
    check_sweep_matches_naive,
    count_tokens,
    image_icl,
    image_query,
    make_tokenizer,
    mixed_prompts,
    seeded,
    text_icl,
    text_query,
    tiny_text_config,
)
from transformers import (
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLProcessor,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from taskvec.models.families.qwen2_5_vl import Qwen25VLAdapter
from taskvec.models.families.qwen2_vl import Qwen2VLAdapter
from taskvec.models.families.vlm import without_video
from taskvec.models.registry import FAMILIES

torch.set_num_threads(1)

SPECIALS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
SIDE = 56  # images are resized to about 56 x 56 px (aspect kept, multiples of 28)


def build(family: str):
    tokenizer = make_tokenizer(SPECIALS, add_bos=False)
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in SPECIALS}
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=SIDE * SIDE, max_pixels=SIDE * SIDE, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    text = dict(
        **tiny_text_config(),
        rope_parameters={"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    special_ids = dict(
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    vision = dict(
        depth=2, hidden_size=32, num_heads=4, patch_size=14, spatial_merge_size=2, temporal_patch_size=2
    )
    if family == "qwen2_vl":
        config = Qwen2VLConfig(
            vision_config=dict(vision, embed_dim=32, mlp_ratio=2), text_config=text, **special_ids
        )
        model_class, processor_class, adapter_class = (
            Qwen2VLForConditionalGeneration,
            Qwen2VLProcessor,
            Qwen2VLAdapter,
        )
    else:
        config = Qwen2_5_VLConfig(
            vision_config=dict(
                vision, intermediate_size=64, out_hidden_size=32, window_size=28, fullatt_block_indexes=[1]
            ),
            text_config=text,
            **special_ids,
        )
        model_class, processor_class = Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
        adapter_class = Qwen25VLAdapter
    processor = without_video(processor_class, image_processor=image_processor, tokenizer=tokenizer)
    return adapter_class.from_parts(seeded(model_class, config), processor, f"tiny-{family}")


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_5_vl"])
def adapter(request):
    return build(request.param)


def test_registered():
    assert {"qwen2_vl", "qwen2_5_vl"} <= set(FAMILIES)


def test_image_expands_to_merged_patches(adapter):
    encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
    grids = encoded.extra["image_grid_thw"]  # (t, h, w) patches per image; 4 images
    merge = adapter.model.config.vision_config.spatial_merge_size
    assert grids.tolist() == [[1, 4, 6]] * 4  # 40 x 32 px (w x h) -> 84 x 56 px, aspect kept
    per_image = int(grids[0].prod()) // merge**2
    assert count_tokens(encoded, adapter.model.config.image_token_id) == [per_image, 3 * per_image, 0]
    assert count_tokens(encoded, adapter.model.config.vision_start_token_id) == [1, 3, 0]


def test_positions_are_the_models_own_mrope(adapter):
    prompts = [image_icl(0), text_query(1), image_query(2)]
    encoded = adapter.encode(prompts)
    positions = adapter.full_inputs(encoded)["position_ids"]
    assert positions.shape == (3, len(prompts), encoded.seq_len)
    # after an image the positions run behind the token count (4 tokens span 2 positions)
    assert positions[0, 0, -1] < encoded.position_ids()[0, -1]
    # the model, left to compute positions itself, gives the same logits
    with torch.no_grad():
        ours = adapter.forward(encoded).logits
        inputs = adapter.full_inputs(encoded)
        del inputs["position_ids"]
        adapter.model.model.rope_deltas = None
        theirs = adapter.model(**inputs, logits_to_keep=1).logits
    torch.testing.assert_close(ours, theirs)
    # the last-token step uses the last column
    last = adapter.last_token_inputs(encoded)["position_ids"]
    torch.testing.assert_close(last, positions[:, :, -1:])


def test_vector_and_patch_position_is_the_delimiter(adapter):
    check_last_token_is_delimiter(adapter, [image_query(0), text_icl(1), image_icl(2)])


def test_patching_touches_only_the_last_position(adapter):
    check_patch_is_causal(adapter, [image_icl(0), text_query(1)], layer=1)


def test_sweep_equals_naive(adapter):
    check_sweep_matches_naive(
        adapter, [image_icl(0), image_icl(1)], [image_query(3), text_query(4), image_icl(5)]
    )


def test_text_only_prompts(adapter):
    check_runs(adapter, [text_query(0), text_icl(1)])


def test_mixed_prompts(adapter):
    check_runs(adapter, mixed_prompts())
