"""Shared machinery of the vision-language families (LLaVA, Idefics, Qwen2-VL, Gemma 3, ...).

A VLM adapter is the text-LM adapter plus: a processor that expands each image into the family's
placeholder tokens and makes the pixel tensors, and the language model found inside the VLM.
Each family file subclasses ``VisionLanguageAdapter`` and overrides only what differs: the
placeholder text per image, how images are handed to its processor, and (Qwen2-VL) positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn

from taskvec.errors import ModelSpecError
from taskvec.models.adapter import Encoded, ModelAdapter
from taskvec.models.loading import Family, LoadOptions, weights_fingerprint
from taskvec.prompts.template import Prompt


class VisionLanguageAdapter(ModelAdapter):
    """Adapter for a transformers image-text-to-text model and its processor."""

    supports_images = True
    #: attribute of the language model holding the final norm
    norm_attribute: str = "norm"
    #: ``Encoded.extra`` keys that hold one value per token (``[batch, seq, ...]``): cut to the
    #: prefix, grown by each generated token, kept in the rows of later steps
    per_token_keys: tuple[str, ...] = ("token_type_ids", "mm_token_type_ids")
    #: whether prompts without any image may be encoded
    allows_text_only: bool = True

    def __init__(self, model: nn.Module, processor, name: str, model_id: str, fingerprint: str = ""):
        super().__init__(model, name, model_id, fingerprint)
        self.processor = processor
        self.use_tokenizer(processor.tokenizer)

    @classmethod
    def from_parts(cls, model: nn.Module, processor, name: str = "tiny", model_id: str | None = None):
        """An adapter around an already-built model and processor (tests, notebooks)."""
        return cls(model, processor, name=name, model_id=model_id or name)

    # --- structure -------------------------------------------------------------------------
    def language_model(self) -> nn.Module:
        """The decoder stack (embeddings, layers, final norm) inside the VLM."""
        return self.model.model.language_model

    @property
    def layers(self) -> nn.ModuleList:
        return self.language_model().layers

    @property
    def text_config(self):
        return self.model.config.get_text_config()

    @property
    def vocab_size(self) -> int:
        return int(self.unembedding().weight.shape[0])

    def final_norm(self) -> nn.Module:
        return getattr(self.language_model(), self.norm_attribute)

    def unembedding(self) -> nn.Module:
        return self.model.get_output_embeddings()

    # --- tokens ----------------------------------------------------------------------------
    def image_placeholder(self) -> str:
        """Text standing for one image before the processor expands it."""
        return self.processor.image_token

    def split(self, prompt: Prompt) -> tuple[str, list[Image.Image]]:
        """A prompt as text with one placeholder per image, plus its images in order."""
        parts: list[str] = []
        images: list[Image.Image] = []
        for segment in prompt:
            if isinstance(segment, str):
                parts.append(segment)
            elif isinstance(segment, Image.Image):
                parts.append(self.image_placeholder())
                images.append(segment.convert("RGB"))
            else:
                raise ModelSpecError(f"prompt segment of type {type(segment).__name__} is not text or image")
        if not images and not self.allows_text_only:
            raise ModelSpecError(f"{self.name} cannot read a prompt without an image")
        return "".join(parts), images

    #: hand images to the processor as one list per prompt (else one flat list)
    nested_images: bool = False

    def run_processor(self, texts: list[str], images: list[list[Image.Image]]) -> dict:
        """Call the family's processor with left padding; images flat or one list per prompt."""
        if not any(images):
            given = None
        elif self.nested_images:
            given = [list(per_prompt) for per_prompt in images]
        else:
            given = [img for per_prompt in images for img in per_prompt]
        return self.processor(
            text=texts, images=given, padding=True, padding_side="left", return_tensors="pt"
        )

    def encode(self, prompts: Sequence[Prompt]) -> Encoded:
        return self.finish_encoding(self._processed(prompts).to(self.device))

    def token_count(self, prompt: Prompt) -> int:
        """From the processor's output where it stands (no transfer to the model's device, no
        derived inputs)."""
        return int(self._processed([prompt]).attention_mask.sum())

    def _processed(self, prompts: Sequence[Prompt]) -> Encoded:
        """The processor's batch as it makes it (on the CPU for transformers' processors)."""
        texts, images = zip(*(self.split(p) for p in prompts), strict=True)
        batch = dict(self.run_processor(list(texts), list(images)))
        input_ids = batch.pop("input_ids")
        attention_mask = batch.pop("attention_mask")
        if not bool(attention_mask[:, -1].all()):
            raise ModelSpecError(f"{self.name}: the processor did not pad on the left")
        extra = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
        return Encoded(input_ids, attention_mask, extra)

    def finish_encoding(self, encoded: Encoded) -> Encoded:
        """Hook for families that add derived inputs (e.g. 3-D rope positions)."""
        return encoded

    # --- forward passes --------------------------------------------------------------------
    def full_inputs(self, encoded: Encoded) -> dict:
        """The core's inputs, with per-token extras cut to this batch's length (the prefix pass
        keeps the full batch's extras)."""
        inputs = super().full_inputs(encoded)
        for key in self.per_token_keys:
            if key in inputs:
                inputs[key] = inputs[key][:, : encoded.seq_len]
        return inputs

    def rows(self, encoded: Encoded, index: torch.Tensor) -> Encoded:
        """Rows for steps after the cached prompt: pixels are not needed there (the images are in
        the cache); per-token inputs are (a step reads its token's column)."""
        extra = {key: encoded.extra[key][index] for key in self.per_token_keys if key in encoded.extra}
        return Encoded(encoded.input_ids[index], encoded.attention_mask[index], extra)

    def grow(self, encoded: Encoded, next_ids: torch.Tensor) -> Encoded:
        """``encoded`` with one generated token ``next_ids: [batch, 1]`` appended to every row.

        The result is a valid batch for a full forward, and its ``last_token_inputs`` are the next
        decoding step's (given the cache so far): per-token inputs grow with the token (a generated
        token is text; ``generated_token_inputs``), e.g. Qwen2-VL's 3-D positions, which do not
        follow ``cumsum(mask) - 1`` after an image, and ``finish_encoding`` adds what is missing."""
        extra = dict(encoded.extra)
        for key in self.per_token_keys:
            if key in extra:
                extra[key] = torch.cat([extra[key], self.generated_token_inputs(key, extra[key])], dim=1)
        return self.finish_encoding(
            Encoded(
                torch.cat([encoded.input_ids, next_ids], dim=1),
                torch.cat([encoded.attention_mask, torch.ones_like(next_ids)], dim=1),
                extra,
            )
        )

    def generated_token_inputs(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """The ``key`` column of a generated token; token type ids: 0, text."""
        return torch.zeros_like(value[:, -1:])


def images_only(processor_class: type) -> type:
    """``processor_class`` without its video part, so it works without torchvision.

    In transformers 5.23 and 5.25 video processors need torchvision (not usable here); images do not. The
    subclass drops ``video_processor`` from the processor's parts, so it can be built, saved and
    loaded (``from_pretrained`` keeps the processor's own settings, e.g. ``image_seq_len``) with
    the image processor and tokenizer alone. It keeps the class name, so saved configs name the
    real processor class and load as that where torchvision is installed.
    """

    class _ImagesOnly(processor_class):
        @classmethod
        def get_attributes(cls) -> list[str]:
            return [name for name in super().get_attributes() if name != "video_processor"]

        @classmethod
        def _get_arguments_from_pretrained(cls, path, processor_dict=None, **kwargs) -> list:
            # load the image parts, then hand the constructor None in the video part's place
            loaded = super()._get_arguments_from_pretrained(path, processor_dict, **kwargs)
            by_name = dict(zip(cls.get_attributes(), loaded, strict=True))
            return [by_name.get(name) for name in processor_class.get_attributes()]

        @classmethod
        def from_dict(cls, processor_dict: dict, **kwargs):
            # transformers 5.24 on build from a dict of the loaded parts: None for the video one
            return super().from_dict({**processor_dict, "video_processor": None}, **kwargs)

    _ImagesOnly.__name__ = _ImagesOnly.__qualname__ = processor_class.__name__
    return _ImagesOnly


def without_video(processor_class: type, **parts):
    """An instance of ``images_only(processor_class)`` built from its parts (tests, notebooks)."""
    parts["video_processor"] = None
    return images_only(processor_class)(**parts)


def _load_processor(model_id: str, processor_class: str | None):
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(model_id)
    except (ImportError, OSError, ValueError, TypeError, AttributeError):
        if processor_class is None:
            raise
        # a processor with a video part fails without torchvision: load it from its image parts
        import transformers

        return images_only(getattr(transformers, processor_class)).from_pretrained(model_id)


def hf_family(
    adapter_class: type[VisionLanguageAdapter],
    model_class: str = "AutoModelForImageTextToText",
    video_processor_class: str | None = None,
) -> Family:
    """A family's ``MODEL_TYPES`` entry: its adapter, loading with its transformers model class and
    AutoProcessor.

    ``video_processor_class`` names the processor class to load from its image parts alone
    (``images_only``) when AutoProcessor cannot build its video part (no torchvision)."""

    def load(model_id: str, options: LoadOptions) -> VisionLanguageAdapter:
        import transformers

        model = getattr(transformers, model_class).from_pretrained(model_id, **options.hf_kwargs())
        processor = _load_processor(model_id, video_processor_class)
        fingerprint = weights_fingerprint(model_id, options)
        return adapter_class(model, processor, name=model_id, model_id=model_id, fingerprint=fingerprint)

    load.__doc__ = f"Load a {adapter_class.__name__} model from a hub id or local folder."
    return Family(load, adapter_class)
