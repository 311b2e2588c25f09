"""What is peculiar to idefics2; its tiny model and case are in helpers/families/idefics2.py, the
checks every family passes in test_contract.py."""

from helpers.families.idefics2 import LATENTS, build
from helpers.tinyparts import image_query


def test_each_image_is_framed_by_boundary_tokens():
    adapter = build()
    encoded = adapter.encode([image_query(0)])
    ids = encoded.input_ids[0].tolist()
    boundary = adapter.tokenizer.convert_tokens_to_ids("<fake_token_around_image>")
    image_token = adapter.tokenizer.convert_tokens_to_ids("<image>")
    start = ids.index(boundary)
    assert ids[start : start + LATENTS + 2] == [boundary] + [image_token] * LATENTS + [boundary]
