"""PaliGemma adapter on a tiny random model. PaliGemma's prefix is bidirectional, so the cached
sweep is not exact for it: the adapter says so and the sweep falls back to the naive procedure."""

import pytest
import torch
from tinyparts import (
    capturing_all,
    check_last_token_is_delimiter,
    check_runs,
    count_tokens,
    image_icl,
    image_query,
    make_tokenizer,
    mixed_prompts,
    seeded,
    task_vectors,
    text_icl,
    text_query,
    tiny_text_config,
)
from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

import taskvec.patching.sweep as sweep_module
from taskvec.models.families.paligemma import PaliGemmaAdapter
from taskvec.models.registry import FAMILIES
from taskvec.patching.hooks import patching_last_token

torch.set_num_threads(1)

SIDE, PATCH = 28, 14


def build():
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


@pytest.fixture(scope="module")
def adapter():
    return build()


def test_registered():
    assert "paligemma" in FAMILIES


def test_image_expands_to_one_token_per_patch(adapter):
    encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
    per_image = (SIDE // PATCH) ** 2
    assert count_tokens(encoded, adapter.model.config.image_token_id) == [per_image, 3 * per_image, 0]
    # the whole prompt is the (bidirectional) prefix
    assert (encoded.extra["token_type_ids"] == 0).all()


def test_a_leading_image_comes_before_bos_as_in_the_processor(adapter):
    prompt = (image_query(0)[1], "Q:\nA:")
    ours = adapter.encode([prompt]).input_ids[0].tolist()
    theirs = adapter.processor(text=["<image>Q:\nA:"], images=[image_query(0)[1]], return_tensors="pt")
    # the processor adds "\n" after the prompt (its prefix/suffix separator); we stop at ":"
    assert theirs["input_ids"][0].tolist()[:-1] == ours
    assert adapter.decode(theirs["input_ids"][0, -1:]) == "\n"


def test_vector_and_patch_position_is_the_delimiter(adapter):
    check_last_token_is_delimiter(adapter, [image_query(0), text_icl(1), image_icl(2)])


def test_patching_reaches_earlier_positions_through_the_bidirectional_prefix(adapter):
    prompts = [image_query(0), text_query(1)]
    encoded = adapter.encode(prompts)
    vector = torch.randn(adapter.hidden_size, generator=torch.Generator().manual_seed(1)) * 3
    layer = 0
    with torch.no_grad():
        with capturing_all(adapter.layers) as clean:
            adapter.forward(encoded)
        with (
            patching_last_token(adapter.layers, {layer: (torch.arange(2), vector.expand(2, -1))}),
            capturing_all(adapter.layers) as patched,
        ):
            adapter.forward(encoded)
    torch.testing.assert_close(patched[layer][:, :-1], clean[layer][:, :-1])
    assert not torch.allclose(patched[layer + 1][:, :-1], clean[layer + 1][:, :-1])


def test_sweep_says_the_cache_is_not_exact_and_falls_back(adapter, monkeypatch):
    assert adapter.prefix_cache_is_exact is False
    calls = []
    naive = sweep_module.sweep_naive

    def spy(*args, **kwargs):
        calls.append(1)
        return naive(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "sweep_naive", spy)
    vectors = task_vectors(adapter, [image_icl(0), image_icl(1)])
    queries = [image_query(3), text_query(4)]
    layers = list(range(adapter.num_layers))
    result = sweep_module.sweep(adapter, queries, vectors, layers)
    assert calls == [1]
    reference = naive(adapter, queries, vectors, layers)
    assert torch.equal(result.patched, reference.patched)


def test_text_only_prompts(adapter):
    check_runs(adapter, [text_query(0), text_icl(1)])


def test_mixed_prompts(adapter):
    check_runs(adapter, mixed_prompts())


def test_positions_are_one_based_like_the_model_default(adapter):
    encoded = adapter.encode([image_icl(0)])  # one prompt: no padding, so the defaults apply
    inputs = adapter.full_inputs(encoded)
    assert inputs["position_ids"][0, 0] == 1
    with torch.no_grad():
        ours = adapter.forward(encoded).logits
        del inputs["position_ids"]
        theirs = adapter.model(**inputs, logits_to_keep=1).logits
    torch.testing.assert_close(ours, theirs)
