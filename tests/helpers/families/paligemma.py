"""PaliGemma on a tiny random model (SigLIP 28 px, 14 px patches -> 4 ``<image>`` tokens).

PaliGemma's prefix is bidirectional, so a KV cache of the prefix is not what a full forward
computes: the adapter declares its prefix cache inexact and the sweep runs full forwards
(test_contract checks both: that a cached step would be wrong here, and that the sweep still
equals the naive one).
"""

from functools import cache

from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

from helpers.contract import FamilyCase
from helpers.tinyparts import (
    make_tokenizer,
    seeded,
    tiny_text_config,
)
from taskvec.models.families.paligemma import PaliGemmaAdapter

SIDE, PATCH = 28, 14


@cache
def build() -> PaliGemmaAdapter:
    tokenizer = make_tokenizer(
        ["<image>"], bos="<bos>", eos="<eos>", named={"image_token": "<image>"}, add_bos=False
    )
    tokenizer.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    image_processor = SiglipImageProcessorPil(size={"height": SIDE, "width": SIDE})
    image_processor.image_seq_length = (SIDE // PATCH) ** 2
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = PaliGemmaConfig(
        text_config=dict(model_type="gemma", **tiny_text_config(head_dim=8)),
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=SIDE,
            patch_size=PATCH,
            projection_dim=32,
        ),
        image_token_index=tokenizer.image_token_id,
        projection_dim=32,
    )
    model = seeded(PaliGemmaForConditionalGeneration, config)
    return PaliGemmaAdapter.from_parts(model, processor, "tiny-paligemma")


CASES = [
    FamilyCase(
        "paligemma",
        build,
        "<image>",
        tokens_per_image=(SIDE // PATCH) ** 2,
        base_llm="gemma",
        patch_layer=0,
        text_path_is_plain_lm=False,  # the text prefix is bidirectional too
    )
]
