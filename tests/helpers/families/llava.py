"""LLaVA-1.5 on a tiny random model: CLIP at 28 px with 14 px patches -> 4 image tokens (the CLS
token is dropped by the "default" feature strategy). The shared checks are in test_contract.py."""

from functools import cache

from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

from helpers.contract import FamilyCase
from helpers.tinyparts import make_tokenizer, seeded, tiny_text_config
from taskvec.models.families.llava import LlavaAdapter


@cache
def build_llava() -> LlavaAdapter:
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


# base LLM: Vicuna (a Llama)
CASES = [FamilyCase("llava", build_llava, "<image>", tokens_per_image=(28 // 14) ** 2)]
