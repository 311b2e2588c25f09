"""Fuyu on a tiny random model: 30 px patches; a 40 x 32 px image is padded to 60 x 60 and cut to
whole patches, 2 x 2, written as rows of ``|SPEAKER|`` each closed by ``|NEWLINE|``."""

from functools import cache

import torch
from contract import FamilyCase, count_tokens
from tinyparts import image, image_icl, image_query, make_tokenizer, seeded, text_query, tiny_text_config
from transformers import FuyuConfig, FuyuForCausalLM, FuyuProcessor
from transformers.models.fuyu.image_processing_pil_fuyu import FuyuImageProcessorPil

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


def test_rows_end_in_newline_and_patches_are_flat():
    adapter = build()
    encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
    assert count_tokens(encoded, adapter.processor.image_newline_id) == [2, 6, 0]
    assert encoded.extra["pixel_values"].shape == (4 * 4, 3 * PATCH * PATCH)  # 4 images x 4 patches


def test_an_image_first_prompt_has_fuyus_layout():
    # (transformers 5.23's FuyuProcessor cannot run with the PIL image processor, so the layout is
    # checked against its documented form: rows of |SPEAKER| + |NEWLINE|, then <s>, then the text)
    adapter = build()
    speaker, newline = adapter.processor.image_token_id, adapter.processor.image_newline_id
    ours = adapter.encode([(image(0), "Q:\nA:")]).input_ids[0].tolist()
    bos = adapter.tokenizer.bos_token_id
    assert ours == [speaker, speaker, newline] * 2 + [bos] + adapter.text_token_ids("Q:\nA:")


def test_patches_are_row_major_channel_last():
    adapter = build()
    pixels = adapter.encode([image_query(0)]).extra["pixel_values"]
    padded = torch.as_tensor(adapter.processor.image_processor([image(0)])["images"][0][0])
    top_right = padded[:, :PATCH, PATCH : 2 * PATCH].permute(1, 2, 0).reshape(-1)
    torch.testing.assert_close(pixels[1], top_right)
