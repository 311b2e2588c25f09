"""Fuyu on a tiny random model: 30 px patches; a 40 x 32 px image is padded to 60 x 60 and cut to
whole patches, 2 x 2, written as rows of ``|SPEAKER|`` each closed by ``|NEWLINE|``.
"""

from functools import cache

from transformers import FuyuConfig, FuyuForCausalLM, FuyuProcessor
from transformers.models.fuyu.image_processing_pil_fuyu import FuyuImageProcessorPil

from helpers.contract import FamilyCase
from helpers.tinyparts import (
    make_tokenizer,
    seeded,
    tiny_text_config,
)
from taskvec.models.families.fuyu import FuyuAdapter

SIDE, PATCH = 60, 30


@cache
def build() -> FuyuAdapter:
    tokenizer = make_tokenizer(["|SPEAKER|", "|NEWLINE|"], add_bos=False)
    processor = FuyuProcessor(
        image_processor=FuyuImageProcessorPil(
            size={"height": SIDE, "width": SIDE}, patch_size={"height": PATCH, "width": PATCH}
        ),
        tokenizer=tokenizer,
    )
    config = FuyuConfig(
        text_config=dict(model_type="persimmon", **tiny_text_config(num_key_value_heads=4)),
        image_size=SIDE,
        patch_size=PATCH,
        image_token_id=tokenizer.convert_tokens_to_ids("|SPEAKER|"),
    )
    model = seeded(FuyuForCausalLM, config)
    return FuyuAdapter.from_parts(model, processor, "tiny-fuyu")


# base LLM: Persimmon, which taskvec does not load on its own; the transfer test uses a Llama
CASES = [FamilyCase("fuyu", build, "|SPEAKER|", tokens_per_image=4)]
