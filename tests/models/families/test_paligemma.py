"""What is peculiar to paligemma; its tiny model and case are in helpers/families/paligemma.py, the
checks every family passes in test_contract.py."""

import torch
from helpers.families.paligemma import build
from helpers.tinyparts import (
    image,
    image_icl,
    image_query,
    text_query,
)


def test_the_whole_prompt_is_the_bidirectional_prefix():
    encoded = build().encode([image_query(0), image_icl(0), text_query(0)])
    assert (encoded.extra["token_type_ids"] == 0).all()


def test_a_leading_image_comes_before_bos_as_in_the_processor():
    adapter = build()
    prompt = (image(0), "Q:\nA:")
    ours = adapter.encode([prompt]).input_ids[0].tolist()
    theirs = adapter.processor(text=["<image>Q:\nA:"], images=[image(0)], return_tensors="pt")
    # the processor adds "\n" after the prompt (its prefix/suffix separator); we stop at ":"
    assert theirs["input_ids"][0].tolist()[:-1] == ours
    assert adapter.decode(theirs["input_ids"][0, -1:]) == "\n"


def test_positions_are_one_based_like_the_model_default():
    adapter = build()
    encoded = adapter.encode([image_icl(0)])  # one prompt: no padding, so the defaults apply
    inputs = adapter.full_inputs(encoded)
    assert inputs["position_ids"][0, 0] == 1
    with torch.no_grad():
        ours = adapter.forward(encoded).logits
        del inputs["position_ids"]
        theirs = adapter.model(**inputs, logits_to_keep=1).logits
    torch.testing.assert_close(ours, theirs)
