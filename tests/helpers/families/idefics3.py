"""Idefics3 and SmolVLM on tiny random models (56 px tiles, image splitting on).

A 40 x 32 px image is resized to a longest edge of 112 px -> 2 x 2 tiles of 56 px plus the global
image; each becomes (56 / 14)^2 / 2^2 = 4 ``<image>`` tokens after the pixel shuffle: 5 x 4 = 20.
(SmolVLMProcessor needs ``num2words``, a dev dependency: the SmolVLM case never skips.)
"""

from functools import cache, partial

from transformers import (
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3Processor,
    SmolVLMConfig,
    SmolVLMForConditionalGeneration,
    SmolVLMProcessor,
)
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

from helpers.contract import FamilyCase
from helpers.tinyparts import make_tokenizer, seeded, tiny_text_config
from taskvec.models.families.idefics3 import Idefics3Adapter
from taskvec.models.vlm import without_video

TILE, PATCH, SCALE = 56, 14, 2


SEQ_LEN = (TILE // PATCH) ** 2 // SCALE**2  # image tokens per tile: 4


SPECIALS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"] + [
    f"<row_{r}_col_{c}>" for r in range(1, 4) for c in range(1, 4)
]


def build(family: str) -> Idefics3Adapter:
    tokenizer = make_tokenizer(SPECIALS)
    image_kwargs = dict(
        size={"longest_edge": 2 * TILE}, max_image_size={"longest_edge": TILE}, do_image_splitting=True
    )
    config_kwargs = dict(
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=TILE,
            patch_size=PATCH,
        ),
        text_config=dict(model_type="llama", **tiny_text_config()),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=SCALE,
    )
    if family == "idefics3":
        processor = Idefics3Processor(
            image_processor=Idefics3ImageProcessorPil(**image_kwargs),
            tokenizer=tokenizer,
            image_seq_len=SEQ_LEN,
        )
        model = seeded(Idefics3ForConditionalGeneration, Idefics3Config(**config_kwargs))
    else:
        processor = without_video(
            SmolVLMProcessor,
            image_processor=SmolVLMImageProcessorPil(**image_kwargs),
            tokenizer=tokenizer,
            image_seq_len=SEQ_LEN,
        )
        model = seeded(SmolVLMForConditionalGeneration, SmolVLMConfig(**config_kwargs))
    return Idefics3Adapter.from_parts(model, processor, f"tiny-{family}")


# base LLMs: Llama 3.1 (Idefics3), SmolLM2 (SmolVLM), both "llama"
CASES = [
    FamilyCase(family, cache(partial(build, family)), "<image>", tokens_per_image=5 * SEQ_LEN)
    for family in ("idefics3", "smolvlm")
]
