"""What is peculiar to mllama; its tiny model and case are in helpers/families/mllama.py, the
checks every family passes in test_contract.py."""

import torch
from helpers.contract import cached_last_step, capturing_all
from helpers.families.mllama import CROSS, MAX_TILES, VISION_TOKENS, build
from helpers.tinyparts import image_icl, image_query, text_icl, text_query

from taskvec.models.cache_keyword import cache_of


def test_each_token_sees_the_image_before_it_through_the_mask():
    adapter = build()
    prompts = [image_query(0), image_icl(0), text_query(0)]
    encoded = adapter.encode(prompts)
    mask = encoded.extra["cross_attention_mask"]  # [batch, seq, images, tiles]
    assert mask.shape == (3, encoded.seq_len, 3, MAX_TILES)
    image_id = adapter.tokenizer.convert_tokens_to_ids("<|image|>")
    for row in range(len(prompts)):
        starts = (encoded.input_ids[row] == image_id).nonzero().flatten().tolist()
        ends = starts[1:] + [encoded.seq_len] if starts else []
        expected = torch.zeros(encoded.seq_len, 3, dtype=torch.long)
        for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
            expected[start:end, i] = 1  # from its <|image|> to the next image
        assert torch.equal(mask[row].amax(-1), expected)
    # 40 x 32 px -> the [1, 2] aspect ratio: both tiles of every image are real
    assert encoded.extra["aspect_ratio_mask"][1].tolist() == [[1, 1]] * 3


def test_images_live_in_the_cross_attention_cache():
    adapter = build()
    encoded = adapter.encode([image_icl(0), image_icl(1)])
    with torch.no_grad():
        cache = cache_of(adapter.model(**adapter.full_inputs(adapter.prefix(encoded)), use_cache=True))
    # the cross-attention layer caches every image's tiles, the others the text prefix
    assert cache.layers[CROSS].keys.shape[-2] == 3 * MAX_TILES * VISION_TOKENS
    assert cache.layers[0].keys.shape[-2] == encoded.seq_len - 1
    logits, _states = cached_last_step(adapter, encoded, repeats=1)
    with torch.no_grad():
        torch.testing.assert_close(logits, adapter.forward(encoded).logits[:, -1])


def test_the_image_reaches_the_delimiter():
    adapter = build()
    with torch.no_grad():
        one, two = (adapter.forward(adapter.encode([image_query(i)])).logits for i in (0, 1))
    assert not torch.allclose(one, two)


def test_image_batches_match_transformers_own_forward():
    """The adapter computes the vision states itself (zeros for missing images); with every row
    holding its images this is exactly what the model computes from ``pixel_values``."""
    adapter = build()
    encoded = adapter.encode([image_query(0), image_query(1)])
    with torch.no_grad():
        ours = adapter.forward(encoded).logits
        theirs = adapter.model(
            input_ids=encoded.input_ids,
            attention_mask=encoded.attention_mask,
            position_ids=encoded.position_ids(),
            **encoded.extra,
            logits_to_keep=1,
        ).logits
    torch.testing.assert_close(ours, theirs)


def test_text_only_rows_pass_the_cross_attention_layer_unchanged():
    """transformers skips the layer for a text-only batch (no hook would fire); the adapter runs it
    on zero vision states, which leaves the text as it was, in a text-only batch or a mixed one."""
    adapter = build()
    for prompts, text_rows in (([text_query(0), text_icl(1)], [0, 1]), ([text_icl(1), image_query(0)], [0])):
        encoded = adapter.encode(prompts)
        with torch.no_grad(), capturing_all(adapter.layers) as states:
            adapter.forward(encoded)
        assert all(s is not None for s in states)
        torch.testing.assert_close(states[CROSS][text_rows], states[CROSS - 1][text_rows], atol=0, rtol=0)
