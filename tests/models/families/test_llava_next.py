"""LLaVA-NeXT and LLaVA-OneVision adapters on tiny random models (28 px base, 2x1 / 1x2 / 2x2 grids)."""

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
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextProcessor,
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    LlavaOnevisionProcessor,
)
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
    LlavaOnevisionImageProcessorPil,
)

from taskvec.models.families.llava_next import LlavaNextAdapter
from taskvec.models.families.llava_onevision import LlavaOnevisionAdapter
from taskvec.models.families.vlm import without_video
from taskvec.models.registry import FAMILIES

torch.set_num_threads(1)

SIDE, PATCH = 28, 14
PINPOINTS = [[28, 28], [28, 56], [56, 28], [56, 56]]


def build(family: str):
    tokenizer = make_tokenizer(["<image>", "<video>"], named={"image_token": "<image>"})
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=SIDE,
        patch_size=PATCH,
    )
    common = dict(
        text_config=dict(model_type="llama", **tiny_text_config()),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=PINPOINTS,
        vision_feature_layer=-1,
    )
    image_kwargs = dict(image_grid_pinpoints=PINPOINTS, do_pad=True)
    if family == "llava_next":
        image_processor = LlavaNextImageProcessorPil(
            size={"shortest_edge": SIDE}, crop_size={"height": SIDE, "width": SIDE}, **image_kwargs
        )
        processor = LlavaNextProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            patch_size=PATCH,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,
        )
        config = LlavaNextConfig(vision_config=dict(model_type="clip_vision_model", **vision), **common)
        model, adapter_class = seeded(LlavaNextForConditionalGeneration, config), LlavaNextAdapter
    else:
        image_processor = LlavaOnevisionImageProcessorPil(
            size={"height": SIDE, "width": SIDE}, **image_kwargs
        )
        processor = without_video(
            LlavaOnevisionProcessor,
            image_processor=image_processor,
            tokenizer=tokenizer,
            num_image_tokens=(SIDE // PATCH) ** 2,
            vision_feature_select_strategy="full",
        )
        config = LlavaOnevisionConfig(
            vision_config=dict(model_type="siglip_vision_model", **vision),
            vision_feature_select_strategy="full",
            video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
            **common,
        )
        model, adapter_class = seeded(LlavaOnevisionForConditionalGeneration, config), LlavaOnevisionAdapter
    return adapter_class.from_parts(model, processor, f"tiny-{family}")


@pytest.fixture(scope="module", params=["llava_next", "llava_onevision"])
def adapter(request):
    return build(request.param)


def test_registered():
    assert {"llava_next", "llava_onevision"} <= set(FAMILIES)


def test_image_expands_to_base_plus_grid_plus_newlines(adapter):
    encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
    # 40 x 32 px (w x h) -> best pinpoint 56 x 56: a 2 x 2 grid of 28 px crops -> 4 x 4 features;
    # unpadding to the 5:4 aspect removes (4 - int(32 * 4 / 40)) // 2 = 0 rows; + 1 newline per row;
    # plus the 2 x 2 features of the base view: 16 + 4 + 4. (The model checks the same count.)
    per_image = 16 + 4 + 4
    assert count_tokens(encoded, adapter.model.config.image_token_id) == [per_image, 3 * per_image, 0]
    assert encoded.extra["image_sizes"].tolist() == [[32, 40]] * 4


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
