"""Fuyu adapter on a tiny random model (30 px patches, images padded to 60 x 60 -> 2 x 2 patches)."""

import pytest
import torch
from tinyparts import (
    check_last_token_is_delimiter,
    check_patch_is_causal,
    check_runs,
    check_sweep_matches_naive,
    count_tokens,
    image,
    image_icl,
    image_query,
    make_tokenizer,
    mixed_prompts,
    seeded,
    text_icl,
    text_query,
    tiny_text_config,
)
from transformers import FuyuConfig, FuyuForCausalLM, FuyuProcessor
from transformers.models.fuyu.image_processing_pil_fuyu import FuyuImageProcessorPil

from taskvec.models.families.fuyu import FuyuAdapter
from taskvec.models.registry import FAMILIES

torch.set_num_threads(1)

SIDE, PATCH = 60, 30


def build():
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


@pytest.fixture(scope="module")
def adapter():
    return build()


def test_registered():
    assert "fuyu" in FAMILIES


def test_image_expands_to_patch_rows(adapter):
    encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
    # 40 x 32 px is padded to 60 x 60, then cut to whole patches: 2 x 2 patches of 30 px
    per_image = 4
    assert count_tokens(encoded, adapter.processor.image_token_id) == [per_image, 3 * per_image, 0]
    assert count_tokens(encoded, adapter.processor.image_newline_id) == [2, 6, 0]
    assert encoded.extra["pixel_values"].shape == (4 * per_image, 3 * PATCH * PATCH)


def test_an_image_first_prompt_has_fuyus_layout(adapter):
    # (transformers 5.23's FuyuProcessor cannot run with the PIL image processor, so the layout is
    # checked against its documented form: rows of |SPEAKER| + |NEWLINE|, then <s>, then the text)
    speaker, newline = adapter.processor.image_token_id, adapter.processor.image_newline_id
    ours = adapter.encode([(image(0), "Q:\nA:")]).input_ids[0].tolist()
    bos = adapter.tokenizer.bos_token_id
    assert ours == [speaker, speaker, newline] * 2 + [bos] + adapter.text_token_ids("Q:\nA:")


def test_patches_are_row_major_channel_last(adapter):
    pixels = adapter.encode([image_query(0)]).extra["pixel_values"]
    padded = torch.as_tensor(adapter.processor.image_processor([image(0)])["images"][0][0])
    top_right = padded[:, :PATCH, PATCH : 2 * PATCH].permute(1, 2, 0).reshape(-1)
    torch.testing.assert_close(pixels[1], top_right)


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
