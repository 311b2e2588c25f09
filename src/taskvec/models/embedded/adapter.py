"""The embedded VLM seen through the one adapter interface every model family shares.

Its "processor" is small and lives here: text runs are tokenised on their own and each image
becomes ``K`` placeholder ids, exactly as transformers processors expand image tokens. Images
are encoded once per distinct picture (by content) and the soft tokens travel in
``Encoded.extra["image_embeds"]``, so a layer sweep or a prompt that repeats an image never
runs the vision encoder twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn

from taskvec.errors import ModelSpecError
from taskvec.models.adapter import BaseLanguageModel, Encoded, ModelAdapter, NotAPrefix
from taskvec.models.embedded.model import EmbeddedVLM
from taskvec.models.vision.efficientnet_lite import preprocess
from taskvec.prompts.inputs import image_digest
from taskvec.prompts.template import Prompt
from taskvec.storage.lru import LruCache

IMAGE_TOKEN = "<image>"


def ensure_image_token(tokenizer) -> int:
    """The placeholder id; added to the tokenizer as a special token when it lacks one. Its id
    may lie past the LLM's embedding table: the model never looks it up (the slot is filled)."""
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    return int(tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))


class EmbeddedVLMAdapter(ModelAdapter):
    """Adapter for :class:`EmbeddedVLM`; the decoder layers are the LLM's own.

    Besides the adapter interface it knows its parts: ``text_adapter``, the adapter of the LLM it
    is built on (same modules and tokenizer); ``base_llm``, that LLM's name; ``recognition()``, the
    measured first-token recognition (style -> domain -> accuracy) of the loaded weights; and
    ``language_model_is_frozen``: the LLM is used as it ships (never trained here), so LLM -> VLM
    transfer is exact on text. The variant whose LLM was tuned with LoRA has it False and no
    ``text_adapter`` (its text computations are its own, not the base LLM's)."""

    supports_images = True

    def __init__(
        self,
        model: EmbeddedVLM,
        tokenizer,
        name: str,
        model_id: str,
        fingerprint: str = "",
        image_size: int = 96,
        image_cache_size: int = 4096,
        text_adapter: ModelAdapter | None = None,
        base_llm: str | None = None,
        recognition: dict | None = None,
        language_model_is_frozen: bool = True,
    ):
        super().__init__(model, name, model_id, fingerprint)
        self.text_adapter = text_adapter
        self.base_llm = base_llm
        self._recognition = recognition
        self.language_model_is_frozen = language_model_is_frozen
        self.use_tokenizer(tokenizer)
        self.image_size = image_size
        self._special_prefix = self._leading_special_ids()
        self._image_cache: LruCache[str, torch.Tensor] = LruCache(image_cache_size)

    def _leading_special_ids(self) -> list[int]:
        """What the tokenizer puts before any text (e.g. Gemma's ``<bos>``), found by comparing
        a text tokenised with and without special tokens."""
        with_specials = self.tokenizer("a")["input_ids"]
        plain = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        return list(with_specials[: len(with_specials) - len(plain)])

    # --- structure -------------------------------------------------------------------------
    @property
    def layers(self) -> nn.ModuleList:
        return self.model.llm.get_decoder().layers

    @property
    def text_config(self):
        return self.model.llm.config.get_text_config()

    @property
    def vocab_size(self) -> int:
        return int(self.model.llm.get_output_embeddings().weight.shape[0])

    @property
    def tokens_per_image(self) -> int:
        return self.model.tokens_per_image

    def final_norm(self) -> nn.Module:
        return self.model.llm.get_decoder().norm

    def unembedding(self) -> nn.Module:
        return self.model.llm.get_output_embeddings()

    def computes_like(self, prompts: Sequence[Prompt]) -> ModelAdapter:
        """On prompts without images the VLM runs its frozen LLM's very modules on the same
        tokens (tested bit for bit), so it computes like the LLM's own adapter."""
        has_image = any(isinstance(segment, Image.Image) for prompt in prompts for segment in prompt)
        if self.text_adapter is None or has_image:
            return self
        return self.text_adapter.computes_like(prompts)

    def recognition(self) -> dict | None:
        return self._recognition

    def base_language_model(self) -> BaseLanguageModel:
        return BaseLanguageModel(self.base_llm, self.text_adapter, self.language_model_is_frozen)

    # --- tokens ----------------------------------------------------------------------------
    def prompt_ids(self, prompt: Prompt) -> tuple[list[int], list[Image.Image]]:
        """Token ids of one prompt (``K`` placeholders per image) and its images in order."""
        ids = list(self._special_prefix)
        images: list[Image.Image] = []
        for segment in prompt:
            if isinstance(segment, str):
                ids.extend(self.tokenizer(segment, add_special_tokens=False)["input_ids"])
            elif isinstance(segment, Image.Image):
                ids.extend([self.model.image_token_id] * self.tokens_per_image)
                images.append(segment)
            else:
                raise ModelSpecError(f"prompt segment of type {type(segment).__name__} is not text or image")
        return ids, images

    def encode(self, prompts: Sequence[Prompt]) -> Encoded:
        rows, all_images = [], []
        for prompt in prompts:
            ids, images = self.prompt_ids(prompt)
            rows.append(ids)
            all_images.extend(images)
        width = max(len(r) for r in rows)
        pad = int(self.tokenizer.pad_token_id)
        device = self.device
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
        attention_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
        extra = {"image_embeds": self.image_embeds(all_images)} if all_images else {}
        return Encoded(input_ids, attention_mask, extra)

    def token_count(self, prompt: Prompt) -> int:
        return len(self.prompt_ids(prompt)[0])

    continues_cached_prefix = True

    def continuation(self, prefix: Prompt, prompt: Prompt) -> tuple[list[int], dict[str, torch.Tensor]]:
        prefix_ids, prefix_images = self.prompt_ids(prefix)
        ids, images = self.prompt_ids(prompt)
        rest = self._rest(prefix_ids, ids)
        if list(map(image_digest, images[: len(prefix_images)])) != list(map(image_digest, prefix_images)):
            raise NotAPrefix("the prompt's images do not begin with the prefix's")
        later = images[len(prefix_images) :]
        return rest, ({"image_embeds": self.image_embeds(later)} if later else {})

    # --- images ----------------------------------------------------------------------------
    @torch.no_grad()
    def image_embeds(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Soft tokens ``[images, K, hidden]``, computed once per distinct picture, and alone: a
        batched convolution rounds by its batch, so tokens computed beside other pictures would
        depend on what the process encoded before (a resumed run or another rank would differ)."""
        keys = [image_digest(image) for image in images]
        found = {key: self._image_cache.get(key) for key in keys}
        for key, image in zip(keys, images, strict=True):
            if found[key] is None:
                pixels = preprocess([image], size=self.image_size).to(self.device)
                found[key] = self.model.image_embeds(pixels)[0]
                self._image_cache.put(key, found[key])
        return torch.stack([found[key] for key in keys])

    def clear_image_cache(self) -> None:
        self._image_cache.clear()

    # --- forward passes --------------------------------------------------------------------
    def rows(self, encoded: Encoded, index: torch.Tensor) -> Encoded:
        """Rows of the batch for steps after the cached prompt: its images are in the cache."""
        return Encoded(encoded.input_ids[index], encoded.attention_mask[index], {})

    def prefix(self, encoded: Encoded) -> Encoded:
        """Everything but the last token; the last token is a delimiter, never an image."""
        if bool((encoded.input_ids[:, -1] == self.model.image_token_id).any()):
            raise ModelSpecError(f"{self.name}: a prompt ends with an image; prompts end with the delimiter")
        return Encoded(encoded.input_ids[:, :-1], encoded.attention_mask[:, :-1], encoded.extra)
