"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL on tiny random models.

Images are resized to about 56 x 84 px (aspect kept, multiples of patch x merge), patchified
(14 px, or 16 px for Qwen3-VL) and merged 2 x 2: a 4 x 6 patch grid -> 6 ``<|image_pad|>``
tokens between ``<|vision_start|>`` and ``<|vision_end|>``.

The focus here is M-RoPE: the cached last-token step must use the 3-D positions transformers
computes for a full forward (``get_rope_index``), which differ from ``cumsum(mask) - 1`` after an
image.
"""

from functools import cache, partial

import torch
from contract import FamilyCase, count_tokens
from tinyparts import image_icl, image_query, make_tokenizer, seeded, text_query, tiny_text_config
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

from taskvec.models.adapter import Encoded
from taskvec.models.families.qwen2_5_vl import Qwen25VLAdapter
from taskvec.models.families.qwen2_vl import ROPE_KEY, Qwen2VLAdapter
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


def test_each_image_is_a_vision_block_with_its_grid():
    for case in CASES:
        adapter = case.build()
        encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
        assert encoded.extra["image_grid_thw"].tolist() == [[1, 4, 6]] * 4  # 40 x 32 px (w x h), 4 images
        assert count_tokens(encoded, adapter.model.config.vision_start_token_id) == [1, 3, 0]
        assert count_tokens(encoded, adapter.model.config.vision_end_token_id) == [1, 3, 0]


def test_positions_are_the_models_own_mrope():
    for case in CASES:
        adapter = case.build()
        prompts = [image_icl(0), text_query(1), image_query(2)]
        encoded = adapter.encode(prompts)
        positions = adapter.full_inputs(encoded)["position_ids"]
        assert positions.shape == (3, len(prompts), encoded.seq_len)
        # after an image the positions run behind the token count (a 2 x 3 merged grid spans 3)
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


def test_generated_tokens_are_positioned_as_the_model_would_place_them():
    """``grow`` extends the stored 3-D positions by one past the last on every axis, without the
    images; that is what ``get_rope_index`` gives the grown batch, also for rows taken apart."""
    for case in CASES:
        adapter = case.build()
        encoded = adapter.encode([image_icl(0), text_query(1), image_query(2)])
        grown = adapter.grow(
            adapter.grow(encoded, torch.tensor([[5], [6], [7]])), torch.tensor([[8], [9], [4]])
        )
        fresh = Encoded(
            grown.input_ids, grown.attention_mask, {k: v for k, v in grown.extra.items() if k != ROPE_KEY}
        )
        expected = adapter.rope_positions(fresh)  # [3, batch, seq]
        torch.testing.assert_close(adapter.full_inputs(grown)["position_ids"], expected, rtol=0, atol=0)
        rows = torch.tensor([2, 0])
        picked = adapter.rows(grown, rows)
        assert "pixel_values" not in picked.extra
        torch.testing.assert_close(adapter.last_token_inputs(picked)["position_ids"], expected[:, rows, -1:])
