"""What is peculiar to idefics3; its tiny model and case are in helpers/families/idefics3.py, the
checks every family passes in test_contract.py."""

from helpers.families.idefics3 import CASES
from helpers.tinyparts import image_icl, image_query, text_query


def test_pixels_are_per_prompt_so_text_and_image_prompts_share_a_batch():
    for case in CASES:
        encoded = case.build().encode([image_query(0), image_icl(0), text_query(0)])
        # [prompts, up to 3 images x 5 tiles, ...] with a mask for the tiles a prompt lacks
        assert encoded.extra["pixel_values"].shape[:2] == (3, 15)
        assert encoded.extra["pixel_attention_mask"].flatten(2).any(-1).sum(-1).tolist() == [5, 15, 0]
