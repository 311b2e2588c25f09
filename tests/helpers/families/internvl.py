"""InternVL (transformers' ``internvl`` format) on a tiny random model.

56 px tiles, 14 px patches, pixel shuffle 0.5: (56 / 14)^2 / 4 = 4 ``<IMG_CONTEXT>`` per tile.
With ``crop_to_patches`` and exactly two crops allowed, a 40 x 32 px image becomes 2 crops plus a
thumbnail: 3 tiles, 12 tokens, framed by ``<img>`` ... ``</img>``.
"""

from functools import cache

from transformers import InternVLConfig, InternVLForConditionalGeneration, InternVLProcessor
from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

from helpers.contract import FamilyCase
from helpers.tinyparts import make_tokenizer, seeded, tiny_text_config
from taskvec.models.families.internvl import InternVLAdapter
from taskvec.models.vlm import without_video

TILE, PATCH = 56, 14


PER_TILE = (TILE // PATCH) ** 2 // 4


TILES = 3


NAMED = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}


@cache
def build() -> InternVLAdapter:
    tokenizer = make_tokenizer([], named=NAMED)
    for name, token in NAMED.items():  # the processor reads <name>_id from the tokenizer
        setattr(tokenizer, f"{name}_id", tokenizer.convert_tokens_to_ids(token))
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": TILE, "width": TILE}, crop_to_patches=True, min_patches=2, max_patches=2
    )
    processor = without_video(
        InternVLProcessor, image_processor=image_processor, tokenizer=tokenizer, image_seq_length=PER_TILE
    )
    config = InternVLConfig(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=TILE,
            patch_size=PATCH,
        ),
        text_config=dict(model_type="qwen2", **tiny_text_config()),
        image_token_id=tokenizer.context_image_token_id,
        downsample_ratio=0.5,
    )
    model = seeded(InternVLForConditionalGeneration, config)
    return InternVLAdapter.from_parts(model, processor, "tiny-internvl")


CASES = [FamilyCase("internvl", build, "<IMG_CONTEXT>", tokens_per_image=TILES * PER_TILE, base_llm="qwen2")]
