"""Llama 3.2 Vision (``model_type`` "mllama"): images enter through cross-attention, not the sequence.

Each image stays one ``<|image|>`` token in the text (no placeholder expansion); its tiles go
through the vision tower and reach the text through the cross-attention decoder layers (e.g. 3, 8,
13, ... in the 11B model), which sit in the same ``model.model.language_model.layers`` list as the
self-attention layers, so layer indices count both kinds. The processor's ``cross_attention_mask``
``[batch, seq, images, tiles]`` says which image each token may see: tokens from an image's
``<|image|>`` up to the next image's see that image (consecutive images are seen together).

What the protocol's shortcuts mean here:

* prefix cache: the prefix pass stores each cross-attention layer's image keys/values in the cache,
  so the last-token step needs only the last row of ``cross_attention_mask``; the cached step is
  exact (the delimiter is text, every image is in the prefix);
* text-only prompts: transformers *skips* the cross-attention layers when a batch has no image, so
  their hooks would not fire (no state to read, a patch there silently lost). The adapter always
  hands the model ``cross_attention_states``, with zeros for missing images: a row that sees only
  zero states gets an exact identity from those layers, which is what skipping computes. The same
  zeros stand for the padding images of a batch whose prompts have different image counts, so a
  text-only prompt gives the same states alone and batched with image prompts;
* tokens before a prompt's first image see no image; transformers then lets them attend to every
  vision state of the row, padding included (only the MLP branch is masked out), so their states,
  and through them the delimiter's, shift slightly with the number of images the batch pads to.
  Prompts of one specification have equal image counts, so taskvec's batches are exact.
"""

from __future__ import annotations

import torch

from taskvec.models.adapter import Encoded
from taskvec.models.vlm import VisionLanguageAdapter, hf_family

MASK_KEY = "cross_attention_mask"  # [batch, seq, images, tiles]: which image tiles each token sees
VISION_KEYS = ("pixel_values", "aspect_ratio_ids", "aspect_ratio_mask")


class MllamaAdapter(VisionLanguageAdapter):
    """``MllamaForConditionalGeneration``; text model ``model.model.language_model``."""

    nested_images = True  # the processor wants one image list per prompt
    per_token_keys = (MASK_KEY,)

    def finish_encoding(self, encoded: Encoded) -> Encoded:
        if MASK_KEY not in encoded.extra:  # a text-only batch: no token sees an image
            tiles = self.model.config.vision_config.max_num_tiles
            encoded.extra[MASK_KEY] = torch.zeros(
                encoded.batch_size, encoded.seq_len, 1, tiles, dtype=torch.long, device=encoded.device
            )
        return encoded

    def cross_attention_states(self, encoded: Encoded) -> torch.Tensor:
        """``[batch, images * tiles * patches, hidden]``: the projected vision states each row's
        cross-attention reads, zero for images a row does not have (and for every row of a
        text-only batch)."""
        vlm = self.model.model
        images = encoded.extra[MASK_KEY].shape[2]
        tiles = self.model.config.vision_config.max_num_tiles
        if "pixel_values" not in encoded.extra:
            dtype = vlm.language_model.embed_tokens.weight.dtype  # not quantized, unlike Linear
            return torch.zeros(
                encoded.batch_size,
                images * tiles * vlm.vision_model.num_patches,
                self.hidden_size,
                dtype=dtype,
                device=encoded.device,
            )
        vision = vlm.vision_model(**{k: encoded.extra[k] for k in VISION_KEYS}).last_hidden_state
        states = vlm.multi_modal_projector(vision)  # [batch, images, tiles, patches, hidden]
        present = encoded.extra["aspect_ratio_ids"] != 0  # id 0 marks a padding image
        states = states * present[:, :, None, None, None].to(states.dtype)
        return states.reshape(encoded.batch_size, -1, self.hidden_size)

    def full_inputs(self, encoded: Encoded) -> dict:
        inputs = super().full_inputs(encoded)
        for key in VISION_KEYS:
            inputs.pop(key, None)
        inputs["cross_attention_states"] = self.cross_attention_states(encoded)
        return inputs

    def generated_token_inputs(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """A generated token sees the images the token before it saw (what transformers' generate
        does); without this row it would see every image of its row, padding included."""
        return value[:, -1:]

    def last_token_inputs(self, encoded: Encoded) -> dict:
        inputs = super().last_token_inputs(encoded)
        inputs[MASK_KEY] = encoded.extra[MASK_KEY][:, -1:]  # the images are in the cache already
        return inputs


#: the HF model types this family serves (found by models.registry)
MODEL_TYPES = {"mllama": hf_family(MllamaAdapter)}
