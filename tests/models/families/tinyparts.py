"""Offline building blocks for the VLM family tests: a byte-level tokenizer made from scratch
(every byte is a token, so ":" is always its own token) plus the family's special tokens,
small images, and tiny random models. Nothing here touches the network or the model hub."""

from __future__ import annotations

import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast


def _byte_alphabet() -> list[str]:
    return sorted(pre_tokenizers.ByteLevel.alphabet())


def make_tokenizer(
    specials: list[str],
    bos: str = "<s>",
    eos: str = "</s>",
    pad: str = "<pad>",
    named: dict[str, str] | None = None,
    add_bos: bool = True,
    **kwargs,
) -> PreTrainedTokenizerFast:
    """A byte-level BPE with no merges: ids 0..255 are bytes, then bos/eos/pad, then ``specials``.

    ``named`` maps attribute names (e.g. ``image_token``) to special tokens, which processors read
    from the tokenizer (``tokenizer.image_token``)."""
    vocab = {ch: i for i, ch in enumerate(_byte_alphabet())}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    named = dict(named or {})
    all_specials = [bos, eos, pad] + [s for s in specials if s not in (bos, eos, pad)]
    for token in named.values():
        if token not in all_specials:
            all_specials.append(token)
    core.add_special_tokens(all_specials)
    if add_bos:
        from tokenizers import processors

        bos_id = core.token_to_id(bos)
        core.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        extra_special_tokens=named or None,
        **kwargs,
    )
    tokenizer.padding_side = "left"
    return tokenizer


def image(seed: int = 0, size: tuple[int, int] = (40, 32)) -> Image.Image:
    """A small random RGB image (fixed seed)."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy(), "RGB")


def tiny_text_config(**overrides) -> dict:
    base = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        vocab_size=320,
    )
    base.update(overrides)
    return base


def seeded(model_class, config, seed: int = 0):
    torch.manual_seed(seed)
    return model_class(config).eval()


# --- behaviours every family must show ------------------------------------------------------
# Each family test module builds a tiny adapter and calls these checks with its own prompts.

from contextlib import contextmanager  # noqa: E402

from taskvec.patching.hooks import _hidden, patching_last_token  # noqa: E402
from taskvec.patching.patch import first_token_ids  # noqa: E402
from taskvec.patching.sweep import sweep, sweep_naive  # noqa: E402
from taskvec.prompts.template import PAPER  # noqa: E402
from taskvec.vectors.extract import last_token_states  # noqa: E402

WORDS = ["cat", "dog", "red", "sun", "sky", "tree"]


def text_query(i: int = 0):
    return PAPER.query(WORDS[i % len(WORDS)])


def image_query(i: int = 0):
    return PAPER.query(image(i))


def text_icl(i: int = 0):
    return PAPER.icl([(WORDS[(i + 1) % 6], "a"), (WORDS[(i + 2) % 6], "b")], WORDS[i % 6])


def image_icl(i: int = 0):
    return PAPER.icl([(image(i + 10), "a"), (image(i + 11), "b")], image(i))


def text_examples_image_query(i: int = 0):
    return PAPER.icl([(WORDS[(i + 1) % 6], "a"), (WORDS[(i + 2) % 6], "b")], image(i))


def image_examples_text_query(i: int = 0):
    return PAPER.icl([(image(i + 10), "a"), (image(i + 11), "b")], WORDS[i % 6])


def mixed_prompts():
    return [text_examples_image_query(0), image_examples_text_query(1)]


@contextmanager
def capturing_all(layers):
    """Every layer's full output ``[batch, seq, hidden]``."""
    records = [None] * len(layers)
    handles = []

    def hook_for(i):
        def hook(_m, _i, output):
            records[i] = _hidden(output).detach().clone()

        return hook

    try:
        for i, layer in enumerate(layers):
            handles.append(layer.register_forward_hook(hook_for(i)))
        yield records
    finally:
        for h in handles:
            h.remove()


def count_tokens(encoded, token_id: int) -> list[int]:
    return (encoded.input_ids == token_id).sum(-1).tolist()


def check_last_token_is_delimiter(adapter, prompts) -> None:
    """The vector position (recorded) and the patch position are the delimiter ":" of "A:"."""
    encoded = adapter.encode(prompts)
    assert [adapter.decode([t]) for t in encoded.input_ids[:, -1].tolist()] == [":"] * len(prompts)
    assert adapter.decode(encoded.input_ids[0, -3:-1].tolist()).endswith("\nA")
    states = last_token_states(adapter, prompts)  # what extraction reads
    with torch.no_grad(), capturing_all(adapter.layers) as full:
        adapter.forward(encoded)
    for layer in range(adapter.num_layers):
        torch.testing.assert_close(states[:, layer], full[layer][:, -1].float())
    # padding does not move anything: each prompt alone gives the same state as in the batch
    for i, prompt in enumerate(prompts):
        alone = last_token_states(adapter, [prompt])
        torch.testing.assert_close(alone[0], states[i], atol=1e-4, rtol=1e-4)


def check_patch_is_causal(adapter, prompts, layer: int) -> None:
    """Patching the last token changes nothing before it, and changes the last token from ``layer``."""
    encoded = adapter.encode(prompts)
    vector = torch.randn(adapter.hidden_size, generator=torch.Generator().manual_seed(1)) * 3
    rows = torch.arange(len(prompts))
    with torch.no_grad():
        with capturing_all(adapter.layers) as clean:
            adapter.forward(encoded)
        with (
            patching_last_token(adapter.layers, {layer: (rows, vector.expand(len(prompts), -1))}),
            capturing_all(adapter.layers) as patched,
        ):
            adapter.forward(encoded)
    for i in range(adapter.num_layers):
        torch.testing.assert_close(patched[i][:, :-1], clean[i][:, :-1])
        if i < layer:
            torch.testing.assert_close(patched[i][:, -1], clean[i][:, -1])
        else:
            assert not torch.allclose(patched[i][:, -1], clean[i][:, -1])
    torch.testing.assert_close(patched[layer][:, -1], vector.expand(len(prompts), -1))


def task_vectors(adapter, prompts) -> torch.Tensor:
    """[layers, hidden]: the mean last-token state of ICL prompts."""
    return last_token_states(adapter, prompts).mean(0)


def check_sweep_matches_naive(adapter, vector_prompts, queries):
    vectors = task_vectors(adapter, vector_prompts)
    layers = list(range(adapter.num_layers))
    fast = sweep(adapter, queries, vectors, layers)
    naive = sweep_naive(adapter, queries, vectors, layers)
    assert torch.equal(fast.patched, naive.patched)
    assert torch.equal(fast.clean, naive.clean)
    # the clean column is the model's own greedy answer
    assert fast.clean.tolist() == first_token_ids(adapter, queries)
    return fast


def check_runs(adapter, prompts) -> list[int]:
    """Prompts encode, run clean and patched, and give one answer token each."""
    vectors = task_vectors(adapter, prompts)
    from taskvec.patching.patch import Patch

    clean = first_token_ids(adapter, prompts)
    patched = first_token_ids(adapter, prompts, Patch(adapter.num_layers - 1, vectors[-1]))
    assert len(clean) == len(patched) == len(prompts)
    return clean
