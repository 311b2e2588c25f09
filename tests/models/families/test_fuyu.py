"""What is peculiar to fuyu; its tiny model and case are in helpers/families/fuyu.py, the
checks every family passes in test_contract.py."""

import torch
from helpers.contract import count_tokens
from helpers.families.fuyu import PATCH, build
from helpers.tinyparts import image, image_icl, image_query, text_query


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
