"""What is peculiar to llava_next; its tiny model and case are in helpers/families/llava_next.py, the
checks every family passes in test_contract.py."""

from helpers.families.llava_next import CASES
from helpers.tinyparts import image_query


def test_image_sizes_go_with_the_pixels():
    """The model recomputes the grid from ``image_sizes`` (height, width) to unpad the features."""
    for case in CASES:
        encoded = case.build().encode([image_query(0), image_query(1)])
        assert encoded.extra["image_sizes"].tolist() == [[32, 40]] * 2
