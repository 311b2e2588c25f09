"""Fuyu / Mantis-Fuyu (``model_type`` "fuyu"): no vision tower; raw 30 px patches are projected
straight into the Persimmon decoder (``model.model.language_model``, final norm
``final_layernorm``).

Fuyu's processor is special: it takes one image per prompt, always puts it first, writes it as rows
of ``|SPEAKER|`` (one per patch) each closed by ``|NEWLINE|``, then ``<s>``, the text, and a
beginning-of-answer token ``\\x04``; it tokenises the image part and the text part separately.
Mantis-Fuyu interleaves several images, which transformers' processor cannot express. So the adapter
builds the ids itself, following the processor's image step (the image processor resizes and
pads; then crop to whole 30 px patches, patchify, one ``|SPEAKER|`` per patch per row):

* an image at the start of the prompt: its rows then ``<s>`` (Fuyu's layout); otherwise ``<s>``
  first; images later in the prompt (ICL examples) are their rows in place;
* each text segment is tokenised on its own, as the processor does for the text after ``<s>``;
* no ``\\x04`` at the end: the prompt ends at the delimiter, where the task vector is read.

``pixel_values`` are all patches of the batch in order ``[patches, 3 * 30 * 30]``; the model
scatters them into the ``|SPEAKER|`` positions in order.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from taskvec.models.adapter import Encoded
from taskvec.models.vlm import VisionLanguageAdapter, hf_family


class FuyuAdapter(VisionLanguageAdapter):
    """``FuyuForCausalLM``."""

    norm_attribute = "final_layernorm"

    def language_model(self) -> nn.Module:
        return self.model.model.language_model

    def image_patches(self, images) -> tuple[torch.Tensor, list[list[int]]]:
        """All patches ``[patches, 3 * p * p]`` and each image's placeholder ids (rows + newlines).

        The processor's own step (resize, pad, crop to whole patches, patchify) is followed; the
        patchify is done here because transformers 5.23's PIL Fuyu image processor cannot patchify
        the tensors its processor hands it (it only works with the torchvision backend)."""
        processor = self.processor
        processed = processor.image_processor(images)
        patch = processor.image_processor.patch_size
        ph, pw = (patch["height"], patch["width"]) if isinstance(patch, dict) else (patch.height, patch.width)
        all_patches, rows = [], []
        for i, batch_images in enumerate(processed["images"]):
            pixels = torch.as_tensor(batch_images[0])  # [3, H, W], padded
            height = min(pixels.shape[-2], math.ceil(processed["image_unpadded_heights"][i][0] / ph) * ph)
            width = min(pixels.shape[-1], math.ceil(processed["image_unpadded_widths"][i][0] / pw) * pw)
            pixels = pixels[:, :height, :width]
            channels = pixels.shape[0]
            # [c, nh, nw, ph, pw] -> [nh * nw, ph, pw, c] -> [patches, ph * pw * c]: row-major patches
            cut = pixels.unfold(1, ph, ph).unfold(2, pw, pw).reshape(channels, -1, ph, pw)
            all_patches.append(cut.permute(1, 2, 3, 0).reshape(-1, ph * pw * channels))
            per_row = [processor.image_token_id] * (width // pw) + [processor.image_newline_id]
            rows.append(per_row * (height // ph))
        return torch.cat(all_patches), rows

    def run_processor(self, texts, images) -> dict:
        tokenizer = self.tokenizer
        flat = [img for per_prompt in images for img in per_prompt]
        out: dict = {}
        rows: list[list[int]] = []
        if flat:
            out["pixel_values"], rows = self.image_patches(flat)
        placeholder = self.image_placeholder()
        sequences, next_image = [], 0
        for text in texts:
            ids: list[int] = []
            has_bos = False
            for i, piece in enumerate(text.split(placeholder)):
                if i > 0:  # an image stood before this piece
                    ids += rows[next_image]
                    next_image += 1
                if piece and not has_bos:  # <s> after the leading images, before the first text
                    ids.append(tokenizer.bos_token_id)
                    has_bos = True
                if piece:
                    ids += tokenizer(piece, add_special_tokens=False)["input_ids"]
            if not has_bos:
                ids.append(tokenizer.bos_token_id)
            sequences.append(ids)
        width = max(len(s) for s in sequences)
        pad = tokenizer.pad_token_id
        # on the CPU, as a transformers processor makes its batch: ``encode`` moves it to the model,
        # ``token_count`` never needs the model's device
        out["input_ids"] = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device="cpu")
        out["attention_mask"] = torch.tensor(
            [[0] * (width - len(s)) + [1] * len(s) for s in sequences], device="cpu"
        )
        return out

    def finish_encoding(self, encoded: Encoded) -> Encoded:
        """The patches in the dtype of the projection they meet: Fuyu's model feeds them to it
        uncast, so a bfloat16 model met the float32 patches and failed."""
        pixels = encoded.extra.get("pixel_values")
        projection = self.model.model.vision_embed_tokens.weight
        if pixels is not None and pixels.is_floating_point() and projection.is_floating_point():
            encoded.extra["pixel_values"] = pixels.to(projection.dtype)
        return encoded


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"fuyu": hf_family(FuyuAdapter, model_class="FuyuForCausalLM")}
