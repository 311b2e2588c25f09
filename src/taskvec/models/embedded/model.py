"""The embedded VLM: EfficientNet-Lite0 -> entity-name projector -> a frozen pretrained LLM.

Built the way LLaVA is built (vision encoder, projector, language model; images become soft
tokens spliced into the text at placeholder positions), from parts that ship on PyPI, small
enough for a CPU. The projector has one unusual part, chosen because recognition is the
bottleneck on this budget: the encoder is fine-tuned as a recogniser of the image suite's
entities, and its posterior mixes the LLM's *own* input embeddings of the entity names. So an
image of a flag enters the LLM near the embedding of the country's name, plus learned "this is
an image" slot embeddings and a low-rank visual term trained with the LLM's loss. Reports must
say this: image queries start closer to text here than in the paper's VLMs.
"""

from __future__ import annotations

import torch
from torch import nn

from taskvec.models.vision.efficientnet_lite import FEATURE_DIM, EfficientNetLite0


class EntityNameProjector(nn.Module):
    """Pooled image features ``[n, F]`` -> ``tokens_per_image`` soft tokens ``[n, K, hidden]``.

    ``name_table[e]`` holds the LLM's input embeddings of entity ``e``'s name (its first ``K``
    tokens, right-aligned next to the text that follows the image; unused slots are zero). It
    is derived from the LLM when the model is assembled, never trained and never saved.
    """

    def __init__(
        self,
        num_entities: int,
        hidden_size: int,
        tokens_per_image: int = 4,
        feature_dim: int = FEATURE_DIM,
        visual_rank: int = 64,
    ):
        super().__init__()
        self.tokens_per_image = tokens_per_image
        self.hidden_size = hidden_size
        self.classifier = nn.Linear(feature_dim, num_entities)
        self.log_temperature = nn.Parameter(torch.zeros(()))
        self.slots = nn.Parameter(torch.zeros(tokens_per_image, hidden_size))
        self.visual_down = nn.Linear(feature_dim, visual_rank, bias=False)
        self.visual_up = nn.Linear(visual_rank, tokens_per_image * hidden_size)
        nn.init.zeros_(self.visual_up.weight)
        nn.init.zeros_(self.visual_up.bias)
        self.register_buffer(
            "name_table", torch.zeros(num_entities, tokens_per_image, hidden_size), persistent=False
        )

    @property
    def num_entities(self) -> int:
        return self.classifier.out_features

    def entity_probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """``[n, entities]``: the recogniser's posterior, sharpened by the learned temperature."""
        return torch.softmax(self.classifier(features) / self.log_temperature.exp(), dim=-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        probabilities = self.entity_probabilities(features)  # [n, entities]
        names = torch.einsum("ne,ekd->nkd", probabilities, self.name_table.to(features.dtype))
        visual = self.visual_up(self.visual_down(features)).view(-1, self.tokens_per_image, self.hidden_size)
        return names + self.slots + visual  # [n, K, hidden]

    @torch.no_grad()
    def set_name_table(self, embeddings: nn.Module, name_token_ids: list[list[int]]) -> None:
        """Fill ``name_table`` from the LLM's input embedding module (scaled ones included, as
        Gemma's are: the module's output is what the decoder sees)."""
        if len(name_token_ids) != self.num_entities:
            raise ValueError(f"{len(name_token_ids)} names for {self.num_entities} entities")
        table = torch.zeros_like(self.name_table)
        k = self.tokens_per_image
        for entity, ids in enumerate(name_token_ids):
            ids = ids[:k]
            if ids:
                ids_here = torch.tensor(ids, device=embeddings.weight.device)
                vectors = embeddings(ids_here).float().to(table.device)  # [len, hidden]
                table[entity, k - len(ids) :] = vectors
        self.name_table.copy_(table)


class EmbeddedVLM(nn.Module):
    """Encoder + projector + causal LM, called like a transformers model.

    ``forward`` takes the usual ``input_ids``/``attention_mask``/``position_ids``/cache
    arguments plus either ``pixel_values`` ``[images, 3, S, S]`` or ready ``image_embeds``
    ``[images, K, hidden]``; each image fills the next ``K`` positions holding
    ``image_token_id`` (row-major order, as images appear in the prompts).
    """

    def __init__(
        self, encoder: EfficientNetLite0, projector: EntityNameProjector, llm: nn.Module, image_token_id: int
    ):
        super().__init__()
        # the image parts compute where the LLM reads its inputs: a device map places the LLM
        # alone, and pixels go to the adapter's device, the input embeddings' (meta: offloaded)
        device = llm.get_input_embeddings().weight.device
        self.encoder = encoder if device.type == "meta" else encoder.to(device)
        self.projector = projector if device.type == "meta" else projector.to(device)
        self.llm = llm
        self.image_token_id = image_token_id
        self.config = llm.config

    @property
    def tokens_per_image(self) -> int:
        return self.projector.tokens_per_image

    def image_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[images, 3, S, S]`` -> ``[images, K, hidden]``."""
        return self.projector(self.encoder.forward_pooled(pixel_values))

    def embed(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token embeddings with image slots filled: ``[batch, seq, hidden]``."""
        slots = input_ids == self.image_token_id
        embeddings = self.llm.get_input_embeddings()(input_ids.masked_fill(slots, 0))
        count = int(slots.sum())
        if count == 0:
            return embeddings
        if image_embeds is None:
            if pixel_values is None:
                raise ValueError("the prompt holds image placeholders but no pixel_values/image_embeds")
            image_embeds = self.image_embeds(pixel_values)
        image_embeds = image_embeds.reshape(-1, image_embeds.shape[-1]).to(embeddings.dtype)
        if image_embeds.shape[0] != count:
            raise ValueError(
                f"{count} image placeholder tokens but {image_embeds.shape[0]} image tokens "
                f"({image_embeds.shape[0] // self.tokens_per_image} images)"
            )
        return embeddings.masked_scatter(slots.unsqueeze(-1), image_embeds)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
        **kwargs,
    ):
        # the KV cache passes through ``kwargs`` under whatever name this transformers gives it
        return self.llm(
            inputs_embeds=self.embed(input_ids, pixel_values, image_embeds),
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )

    def get_output_embeddings(self) -> nn.Module:
        return self.llm.get_output_embeddings()

    def get_input_embeddings(self) -> nn.Module:
        return self.llm.get_input_embeddings()

    def get_decoder(self) -> nn.Module:
        return self.llm.get_decoder()
