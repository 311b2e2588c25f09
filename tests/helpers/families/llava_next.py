"""LLaVA-NeXT and LLaVA-OneVision on tiny random models (28 px base view, 2x1 / 1x2 / 2x2 grids).

A 40 x 32 px image picks the 56 x 56 pinpoint: a 2 x 2 grid of 28 px crops -> 4 x 4 features;
unpadding to the 5:4 aspect removes (4 - int(32 * 4 / 40)) // 2 = 0 rows; one newline per row;
plus the 2 x 2 features of the base view: 16 + 4 + 4 = 24 tokens (the model checks the same count).
"""

from functools import cache, partial

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

from helpers.contract import FamilyCase
from helpers.tinyparts import make_tokenizer, seeded, tiny_text_config
from taskvec.models.families.llava_next import LlavaNextAdapter
from taskvec.models.families.llava_onevision import LlavaOnevisionAdapter
from taskvec.models.vlm import without_video

SIDE, PATCH = 28, 14


PINPOINTS = [[28, 28], [28, 56], [56, 28], [56, 56]]


TOKENS = 16 + 4 + 4


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


CASES = [
    FamilyCase("llava_next", cache(partial(build, "llava_next")), "<image>", tokens_per_image=TOKENS),
    FamilyCase(
        "llava_onevision",
        cache(partial(build, "llava_onevision")),
        "<image>",
        tokens_per_image=TOKENS,
        base_llm="qwen2",
    ),
]
