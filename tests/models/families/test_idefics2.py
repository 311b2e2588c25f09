"""Idefics2 adapter on a tiny random model (perceiver resampler: 3 latents per image)."""

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
from transformers import Idefics2Config, Idefics2ForConditionalGeneration, Idefics2Processor
from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

from taskvec.models.families.idefics2 import Idefics2Adapter
from taskvec.models.registry import FAMILIES

torch.set_num_threads(1)

LATENTS = 3


def build():
    tokenizer = make_tokenizer(
        ["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
        named={"image_token": "<image>", "image_boundary_token": "<fake_token_around_image>"},
    )
    tokenizer.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    processor = Idefics2Processor(
        image_processor=Idefics2ImageProcessorPil(
            size={"shortest_edge": 28, "longest_edge": 42}, do_image_splitting=False
        ),
        tokenizer=tokenizer,
        image_seq_len=LATENTS,
    )
    config = Idefics2Config(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=42,
            patch_size=14,
        ),
        perceiver_config=dict(
            hidden_size=32,
            resampler_n_latents=LATENTS,
            resampler_depth=1,
            resampler_n_heads=2,
            resampler_head_dim=8,
            num_key_value_heads=1,
        ),
        text_config=dict(model_type="mistral", **tiny_text_config()),
        image_token_id=tokenizer.image_token_id,
    )
    model = seeded(Idefics2ForConditionalGeneration, config)
    return Idefics2Adapter.from_parts(model, processor, "tiny-idefics2")


@pytest.fixture(scope="module")
def adapter():
    return build()


def test_registered():
    assert "idefics2" in FAMILIES


def test_image_expands_to_resampler_latents(adapter):
    encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
    per_image = adapter.model.config.perceiver_config.resampler_n_latents
    assert count_tokens(encoded, adapter.model.config.image_token_id) == [per_image, 3 * per_image, 0]


def test_vector_and_patch_position_is_the_delimiter(adapter):
    check_last_token_is_delimiter(adapter, [image_query(0), text_icl(1), image_icl(2)])


def test_patching_touches_only_the_last_position(adapter):
    check_patch_is_causal(adapter, [image_query(0), text_query(1)], layer=1)


def test_sweep_equals_naive(adapter):
    check_sweep_matches_naive(
        adapter, [image_icl(0), image_icl(1)], [image_query(3), text_query(4), image_query(5)]
    )


def test_text_only_prompts(adapter):
    check_runs(adapter, [text_query(0), text_icl(1)])


def test_mixed_prompts(adapter):
    check_runs(adapter, mixed_prompts())
