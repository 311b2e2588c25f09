"""LLaVA-1.5 adapter on a tiny random model (CLIP 28 px, patch 14 -> 4 image tokens)."""

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
from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

from taskvec.models.families.llava import LlavaAdapter
from taskvec.models.registry import FAMILIES

torch.set_num_threads(1)


def build_llava():
    tokenizer = make_tokenizer(["<image>"], named={"image_token": "<image>"})
    image_processor = LlavaImageProcessorPil(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLS token, dropped by the "default" strategy
    )
    config = LlavaConfig(
        vision_config=dict(
            model_type="clip_vision_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=28,
            patch_size=14,
        ),
        text_config=dict(model_type="llama", **tiny_text_config()),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
    )
    return LlavaAdapter.from_parts(seeded(LlavaForConditionalGeneration, config), processor, "tiny-llava")


@pytest.fixture(scope="module")
def adapter():
    return build_llava()


def test_registered():
    assert "llava" in FAMILIES


def test_image_expands_to_one_token_per_patch(adapter):
    encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
    per_image = (28 // 14) ** 2  # CLS dropped
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


def test_load_model_from_a_local_folder(adapter, tmp_path):
    """The registry's path: config.model_type -> this family's loader (model class + AutoProcessor)."""
    from taskvec.models.registry import load_model

    adapter.model.save_pretrained(tmp_path)
    adapter.processor.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path))
    assert isinstance(loaded, LlavaAdapter)
    prompts = [image_query(0), text_query(1)]
    assert torch.equal(loaded.encode(prompts).input_ids, adapter.encode(prompts).input_ids)
    torch.testing.assert_close(
        loaded.forward(loaded.encode(prompts)).logits, adapter.forward(adapter.encode(prompts)).logits
    )
