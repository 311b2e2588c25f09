"""Llama 3.2 Vision (Mllama) on a tiny random model: 4 decoder layers, layer 2 cross-attention.

Images are not expanded into the text: each stays one ``<|image|>`` token, and its tiles (28 px,
up to 2; 14 px patches + a class token = 5 vision tokens per tile) reach the text through the
cross-attention layer. The cross-attention gates start at zero in a fresh model (the layer would
then do nothing); the tiny model opens them, as training does.
"""

from functools import cache

import torch
from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaProcessor
from transformers.models.mllama.image_processing_pil_mllama import MllamaImageProcessorPil

from helpers.contract import FamilyCase
from helpers.tinyparts import (
    make_tokenizer,
    seeded,
    tiny_text_config,
)
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
