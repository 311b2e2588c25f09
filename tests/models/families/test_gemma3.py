"""Gemma 3 (vision) adapter on a tiny random model (SigLIP 28 px, 4 patches pooled to 1 token...)."""

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
from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor
from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

from taskvec.models.families.gemma3 import Gemma3Adapter
from taskvec.models.registry import FAMILIES

torch.set_num_threads(1)

SIDE, PATCH, TOKENS = 56, 14, 4  # 4 x 4 patches average-pooled to 2 x 2 = 4 soft tokens


def build():
    named = {
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
        "image_token": "<image_soft_token>",
    }
    tokenizer = make_tokenizer([], bos="<bos>", eos="<eos>", named=named)
    tokenizer.boi_token_id = tokenizer.convert_tokens_to_ids("<start_of_image>")
    tokenizer.eoi_token_id = tokenizer.convert_tokens_to_ids("<end_of_image>")
    tokenizer.image_token_id = tokenizer.convert_tokens_to_ids("<image_soft_token>")
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessorPil(size={"height": SIDE, "width": SIDE}, do_pan_and_scan=False),
        tokenizer=tokenizer,
        image_seq_length=TOKENS,
    )
    text = tiny_text_config(head_dim=8, sliding_window=8, query_pre_attn_scalar=8)
    text["layer_types"] = ["sliding_attention", "full_attention", "sliding_attention"]
    config = Gemma3Config(
        text_config=dict(model_type="gemma3_text", **text),
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=SIDE,
            patch_size=PATCH,
        ),
        mm_tokens_per_image=TOKENS,
        boi_token_index=tokenizer.boi_token_id,
        eoi_token_index=tokenizer.eoi_token_id,
        image_token_index=tokenizer.image_token_id,
    )
    model = seeded(Gemma3ForConditionalGeneration, config)
    return Gemma3Adapter.from_parts(model, processor, "tiny-gemma3")


@pytest.fixture(scope="module")
def adapter():
    return build()


def test_registered():
    assert "gemma3" in FAMILIES


def test_image_expands_to_mm_tokens_per_image(adapter):
    encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
    per_image = adapter.model.config.mm_tokens_per_image
    assert count_tokens(encoded, adapter.model.config.image_token_id) == [per_image, 3 * per_image, 0]
    assert count_tokens(encoded, adapter.model.config.boi_token_index) == [1, 3, 0]
    # token_type_ids mark exactly the image tokens (the bidirectional blocks)
    marked = encoded.extra["token_type_ids"] == 1
    assert torch.equal(marked, encoded.input_ids == adapter.model.config.image_token_id)


def test_vector_and_patch_position_is_the_delimiter(adapter):
    check_last_token_is_delimiter(adapter, [image_query(0), text_icl(1), image_icl(2)])


def test_patching_touches_only_the_last_position(adapter):
    check_patch_is_causal(adapter, [image_icl(0), text_query(1)], layer=1)


def test_sweep_equals_naive(adapter):
    # the sliding window (8 tokens) is shorter than the prompts, so the cache path covers it too
    check_sweep_matches_naive(
        adapter, [image_icl(0), image_icl(1)], [image_query(3), text_query(4), image_icl(5)]
    )


def test_text_only_prompts(adapter):
    check_runs(adapter, [text_query(0), text_icl(1)])


def test_mixed_prompts(adapter):
    check_runs(adapter, mixed_prompts())
