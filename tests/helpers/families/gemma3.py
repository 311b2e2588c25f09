"""Gemma 3 with vision on a tiny random model: SigLIP at 56 px, 4 x 4 patches average-pooled to
2 x 2 = 4 ``<image_soft_token>``, framed by ``<start_of_image>`` / ``<end_of_image>``. The text
model alternates sliding-window (8 tokens, shorter than the prompts) and full attention.
"""

from functools import cache

from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3Processor
from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

from helpers.contract import FamilyCase
from helpers.tinyparts import make_tokenizer, seeded, tiny_text_config
from taskvec.models.families.gemma3 import Gemma3Adapter

SIDE, PATCH, TOKENS = 56, 14, 4


@cache
def build() -> Gemma3Adapter:
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


CASES = [FamilyCase("gemma3", build, "<image_soft_token>", TOKENS, base_llm="gemma3_text")]
