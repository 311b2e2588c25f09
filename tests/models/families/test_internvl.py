"""What is peculiar to internvl; its tiny model and case are in helpers/families/internvl.py, the
checks every family passes in test_contract.py."""

from helpers.families.internvl import NAMED, PER_TILE, TILE, TILES, build
from helpers.tinyparts import image_icl, image_query, text_query


def test_tiles_are_flat_in_prompt_order_and_framed():
    adapter = build()
    encoded = adapter.encode([image_query(0), image_icl(1), text_query(0)])
    assert encoded.extra["pixel_values"].shape == (4 * TILES, 3, TILE, TILE)
    ids = encoded.input_ids[0].tolist()
    start, end = (
        adapter.tokenizer.convert_tokens_to_ids(NAMED[k]) for k in ("start_image_token", "end_image_token")
    )
    context = adapter.tokenizer.convert_tokens_to_ids(NAMED["context_image_token"])
    first = ids.index(start)
    assert ids[first : first + TILES * PER_TILE + 2] == [start] + [context] * TILES * PER_TILE + [end]
