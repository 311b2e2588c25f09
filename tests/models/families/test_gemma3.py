"""What is peculiar to gemma3; its tiny model and case are in helpers/families/gemma3.py, the
checks every family passes in test_contract.py."""

import torch
from helpers.contract import count_tokens
from helpers.families.gemma3 import build
from helpers.tinyparts import image_icl, image_query, text_query


def test_token_type_ids_mark_the_bidirectional_image_blocks():
    adapter = build()
    encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
    assert count_tokens(encoded, adapter.model.config.boi_token_index) == [1, 3, 0]
    marked = encoded.extra["token_type_ids"] == 1
    assert torch.equal(marked, encoded.input_ids == adapter.model.config.image_token_id)
