"""Llama 3.2 Vision (Mllama) on a tiny random model: 4 decoder layers, layer 2 cross-attention.

Images are not expanded into the text: each stays one ``<|image|>`` token, and its tiles (28 px,
up to 2; 14 px patches + a class token = 5 vision tokens per tile) reach the text through the
cross-attention layer. The cross-attention gates start at zero in a fresh model (the layer would
then do nothing); the tiny model opens them, as training does.
"""

from functools import cache

import torch
from contract import FamilyCase, cached_last_step, capturing_all
from tinyparts import image_icl, image_query, make_tokenizer, seeded, text_icl, text_query, tiny_text_config
from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaProcessor
from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

from taskvec.models.families.mllama import MllamaAdapter

TILE, PATCH, MAX_TILES, CROSS = 28, 14, 2, 2
VISION_TOKENS = (TILE // PATCH) ** 2 + 1  # per tile, with the class token


@cache
def build() -> MllamaAdapter:
    # the processor puts <|begin_of_text|> itself (after any leading images), so the tokenizer does not
    tokenizer = make_tokenizer(["<|image|>", "<|python_tag|>"], bos="<|begin_of_text|>", add_bos=False)
    processor = MllamaProcessor(
        image_processor=MllamaImageProcessorPil(
            size={"height": TILE, "width": TILE}, max_image_tiles=MAX_TILES
        ),
        tokenizer=tokenizer,
    )
    config = MllamaConfig(
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_global_layers=1,
            attention_heads=4,
            intermediate_size=64,
            vision_output_dim=64,  # the last state and one intermediate layer's, concatenated
            intermediate_layers_indices=[0],
            image_size=TILE,
            patch_size=PATCH,
            max_num_tiles=MAX_TILES,
            supported_aspect_ratios=[[1, 1], [1, 2], [2, 1]],
        ),
        text_config=dict(
            **tiny_text_config(num_hidden_layers=4),
            cross_attention_layers=[CROSS],
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        image_token_index=processor.image_token_id,
    )
    model = seeded(MllamaForConditionalGeneration, config)
    with torch.no_grad():
        layer = model.model.language_model.layers[CROSS]
        layer.cross_attn_attn_gate.fill_(1.0)
        layer.cross_attn_mlp_gate.fill_(1.0)
    return MllamaAdapter.from_parts(model, processor, "tiny-mllama")


CASES = [
    FamilyCase(
        "mllama",
        build,
        "<|image|>",
        tokens_per_image=1,  # no expansion: the image is in the cross-attention keys
        patch_layer=CROSS,  # the hooks must reach the cross-attention layer too
        batches_mix_image_counts=False,  # see the adapter: text before a row's first image
    )
]


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
        cache = adapter.model(**adapter.full_inputs(adapter.prefix(encoded)), use_cache=True).past_key_values
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
