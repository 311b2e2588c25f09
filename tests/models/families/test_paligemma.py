"""PaliGemma on a tiny random model (SigLIP 28 px, 14 px patches -> 4 ``<image>`` tokens).

PaliGemma's prefix is bidirectional, so a KV cache of the prefix is not what a full forward
computes: the adapter declares its prefix cache inexact and the sweep runs full forwards
(test_contract checks both: that a cached step would be wrong here, and that the sweep still
equals the naive one)."""

from functools import cache

import torch
from contract import FamilyCase
from tinyparts import image, image_icl, image_query, make_tokenizer, seeded, text_query, tiny_text_config
from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

from taskvec.models.families.paligemma import PaliGemmaAdapter

SIDE, PATCH = 28, 14


@cache
def build() -> PaliGemmaAdapter:
    tokenizer = make_tokenizer(
        ["<image>"], bos="<bos>", eos="<eos>", named={"image_token": "<image>"}, add_bos=False
    )
    tokenizer.image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    image_processor = SiglipImageProcessorPil(size={"height": SIDE, "width": SIDE})
    image_processor.image_seq_length = (SIDE // PATCH) ** 2
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = PaliGemmaConfig(
        text_config=dict(model_type="gemma", **tiny_text_config(head_dim=8)),
        vision_config=dict(
            model_type="siglip_vision_model",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=SIDE,
            patch_size=PATCH,
            projection_dim=32,
        ),
        image_token_index=tokenizer.image_token_id,
        projection_dim=32,
    )
    model = seeded(PaliGemmaForConditionalGeneration, config)
    return PaliGemmaAdapter.from_parts(model, processor, "tiny-paligemma")


CASES = [
    FamilyCase(
        "paligemma",
        build,
        "<image>",
        tokens_per_image=(SIDE // PATCH) ** 2,
        base_llm="gemma",
        patch_layer=0,
        text_path_is_plain_lm=False,  # the text prefix is bidirectional too
    )
]


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
