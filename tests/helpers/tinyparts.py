"""Offline building blocks for the VLM family tests: a byte-level tokenizer made from scratch
(every byte is a token, so ":" is always its own token) plus the family's special tokens,
small images, and tiny random models. Nothing here touches the network or the model hub."""

from __future__ import annotations

import torch
from PIL import Image
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from taskvec.prompts.template import PAPER, Prompt


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


# --- prompts in the paper's format (Q:{x}\nA:{y}\n\n), every one ending at the delimiter ":" ---
WORDS = ["cat", "dog", "red", "sun", "sky", "tree"]


def text_query(i: int = 0) -> Prompt:
    return PAPER.query(WORDS[i % len(WORDS)])


def image_query(i: int = 0) -> Prompt:
    return PAPER.query(image(i))


def text_icl(i: int = 0) -> Prompt:
    return PAPER.icl([(WORDS[(i + 1) % 6], "a"), (WORDS[(i + 2) % 6], "b")], WORDS[i % 6])


def image_icl(i: int = 0) -> Prompt:
    """Two image examples and an image query: three images."""
    return PAPER.icl([(image(i + 10), "a"), (image(i + 11), "b")], image(i))


def text_examples_image_query(i: int = 0) -> Prompt:
    return PAPER.icl([(WORDS[(i + 1) % 6], "a"), (WORDS[(i + 2) % 6], "b")], image(i))


def image_examples_text_query(i: int = 0) -> Prompt:
    return PAPER.icl([(image(i + 10), "a"), (image(i + 11), "b")], WORDS[i % 6])


def mixed_prompts() -> list[Prompt]:
    """Text examples with an image query (one image), and the reverse (two images)."""
    return [text_examples_image_query(0), image_examples_text_query(1)]


def image_count(prompt: Prompt) -> int:
    return sum(isinstance(segment, Image.Image) for segment in prompt)
