"""Idefics2 on a tiny random model: the perceiver resampler turns every image into 3 latents,
written as ``<fake_token_around_image>`` + ``<image>`` x 3 + ``<fake_token_around_image>``.
"""

from functools import cache

from transformers import Idefics2Config, Idefics2ForConditionalGeneration, Idefics2Processor
from transformers.models.idefics2.image_processing_pil_idefics2 import Idefics2ImageProcessorPil

from helpers.contract import FamilyCase
from helpers.tinyparts import make_tokenizer, seeded, tiny_text_config
from taskvec.models.families.idefics2 import Idefics2Adapter

LATENTS = 3


@cache
def build() -> Idefics2Adapter:
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


CASES = [FamilyCase("idefics2", build, "<image>", tokens_per_image=LATENTS, base_llm="mistral")]
