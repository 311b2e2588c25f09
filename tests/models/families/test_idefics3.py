"""Idefics3 and SmolVLM adapters on tiny random models (56 px tiles, image splitting on)."""

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
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3Processor,
    SmolVLMConfig,
    SmolVLMForConditionalGeneration,
    SmolVLMProcessor,
)
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

from taskvec.models.families.idefics3 import Idefics3Adapter
from taskvec.models.families.vlm import without_video
from taskvec.models.registry import FAMILIES

torch.set_num_threads(1)

TILE, PATCH, SCALE = 56, 14, 2
SEQ_LEN = (TILE // PATCH) ** 2 // SCALE**2  # image tokens per tile: 4
SPECIALS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>"] + [
    f"<row_{r}_col_{c}>" for r in range(1, 4) for c in range(1, 4)
]


def build(family: str):
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
        pytest.importorskip("num2words", reason="SmolVLMProcessor needs num2words (pip install num2words)")
        processor = without_video(
            SmolVLMProcessor,
            image_processor=SmolVLMImageProcessorPil(**image_kwargs),
            tokenizer=tokenizer,
            image_seq_len=SEQ_LEN,
        )
        model = seeded(SmolVLMForConditionalGeneration, SmolVLMConfig(**config_kwargs))
    return Idefics3Adapter.from_parts(model, processor, f"tiny-{family}")


@pytest.fixture(scope="module", params=["idefics3", "smolvlm"])
def adapter(request):
    return build(request.param)


def test_registered():
    assert {"idefics3", "smolvlm"} <= set(FAMILIES)


def test_image_expands_to_tiles_times_seq_len(adapter):
    encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
    # 40 x 32 px -> longest edge 112 -> 2 x 2 tiles of 56 px, plus the global image: 5 x SEQ_LEN
    per_image = 5 * SEQ_LEN
    assert count_tokens(encoded, adapter.model.config.image_token_id) == [per_image, 3 * per_image, 0]
    assert encoded.extra["pixel_values"].shape[:2] == (3, 15)  # per prompt, up to 3 images x 5 tiles


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
