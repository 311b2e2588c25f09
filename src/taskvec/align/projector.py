"""Stage 2 of alignment: teach the projector to speak to a frozen LLM, with the LLM's own loss.

The recogniser (stage 1) is frozen; its pooled features of the training tiles (clean and
augmented copies) are computed once. Each training sequence is an image-ICL prompt built by the
same templates and adapter the experiments use — ``Q: <image>\\nA: name`` examples, 0-3 of them,
then an image query — and the loss is the LLM's cross-entropy on the query's answer: the
entity's plain name. Context examples make multi-image prompts familiar; the names are never
task labels. Trained: the image slot embeddings, the low-rank visual term and the temperature.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from torch import nn

from taskvec.align.augment import augment
from taskvec.align.recogniser import Recogniser, RecognitionData, normalise
from taskvec.config import Seed
from taskvec.errors import TemplateError
from taskvec.models.adapter import model_logits
from taskvec.models.embedded.adapter import EmbeddedVLMAdapter
from taskvec.models.embedded.model import EntityNameProjector
from taskvec.prompts.template import get_template


def _known_templates(names: tuple[str, ...]) -> tuple[str, ...]:
    """An unknown name is refused with the config, not half-way into training."""
    for name in names:
        try:
            get_template(name)
        except TemplateError as error:
            raise ValueError(str(error)) from None
    return names


#: the prompt templates a stage's sequences are written in, one drawn per sequence
TemplateNames = Annotated[tuple[str, ...], Field(min_length=1), AfterValidator(_known_templates)]


class ProjectorConfig(BaseModel):
    """Everything stage 2 depends on; part of the shipped projector's checksum."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens_per_image: int = 4
    visual_rank: int = 64
    steps: int = Field(default=200, ge=1)
    batch_size: int = Field(default=24, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    max_context_examples: int = 3
    answer_tokens: int = 4
    #: augmented copies of every tile's features beside the clean one: pictures the recogniser is
    #: less sure of, so the projector learns what to make of a spread posterior
    augmented_copies: int = 3
    templates: TemplateNames = ("spaced", "paper")
    #: start the posterior's temperature at the recogniser's calibrated one (``calibrated_temperature``)
    calibrate_temperature: bool = True
    seed: Seed = 0


def new_projector(num_entities: int, hidden_size: int, config: ProjectorConfig) -> EntityNameProjector:
    """A projector whose random initialisation follows ``config.seed`` alone. torch seeds its
    default generator at random in every process, and loading the LLM draws from it, so a
    projector built without this starts from different weights on every run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return EntityNameProjector(
            num_entities, hidden_size, config.tokens_per_image, visual_rank=config.visual_rank
        )


@torch.no_grad()
def pooled_features(recogniser: Recogniser, data: RecognitionData, config: ProjectorConfig) -> torch.Tensor:
    """``[copies, n, F]`` on the CPU: features of every tile, clean then ``augmented_copies``
    augmented. The tiles are augmented on the CPU (the seeded draws are the CPU generator's on any
    machine) and go to the encoder's device, wherever the VLM put it."""
    generator = torch.Generator().manual_seed(config.seed + 1)
    encoder = recogniser.encoder.eval()
    device = next(encoder.parameters()).device
    copies = []
    for copy in range(1 + config.augmented_copies):
        chunks = []
        for start in range(0, len(data.labels), 256):
            images = data.images[start : start + 256]
            if copy:
                images = augment(images, generator, data.flippable[start : start + 256])
            chunks.append(encoder.forward_pooled(normalise(images).to(device)).cpu())
        copies.append(torch.cat(chunks))
    return torch.stack(copies)


@torch.no_grad()
def calibrated_temperature(classifier: nn.Linear, features: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al. 2017) of the recogniser on the augmented copies of the
    tiles (``features[1:]``, pictures it is less sure of): the T that minimises the negative
    log-likelihood of the true entity, on a log grid from 0.1 to 2. Label smoothing leaves the
    posterior flatter than the recogniser's accuracy warrants, and the projector mixes the names
    by that posterior, so stage 2 starts from the calibrated one. No held-out picture is used."""
    if features.shape[0] < 2:
        raise ValueError("calibration needs augmented copies of the features (augmented_copies >= 1)")
    device = classifier.weight.device  # the features and labels may still be on the CPU
    logits = torch.cat([classifier(copy.to(device)) for copy in features[1:]])  # [copies * n, entities]
    targets = labels.to(device).repeat(features.shape[0] - 1)
    grid = torch.logspace(math.log10(0.1), math.log10(2.0), 61)
    losses = torch.stack([F.cross_entropy(logits / t, targets) for t in grid])
    return float(grid[int(losses.argmin())])


class AnswerBatch:
    """Token ids and answer targets of a batch of image-ICL sequences (right-padded)."""

    def __init__(self, adapter: EmbeddedVLMAdapter, sequences: list[tuple[list, list[int], list[int]]]):
        # each sequence: (prompt ids, image feature rows, answer ids)
        pad = int(adapter.tokenizer.pad_token_id)
        width = max(len(ids) + len(answer) for ids, _, answer in sequences)
        device = adapter.device
        self.input_ids = torch.full((len(sequences), width), pad, device=device)
        self.attention_mask = torch.zeros(len(sequences), width, dtype=torch.long, device=device)
        self.targets = torch.full((len(sequences), width), -100, device=device)
        self.feature_rows: list[int] = []
        for row, (ids, features, answer) in enumerate(sequences):
            full = ids + answer
            self.input_ids[row, : len(full)] = torch.tensor(full, device=device)
            self.attention_mask[row, : len(full)] = 1
            # position p predicts token p + 1: the answer is predicted from the delimiter on
            self.targets[row, len(ids) - 1 : len(full) - 1] = torch.tensor(answer, device=device)
            self.feature_rows.extend(features)


def sample_sequences(
    adapter: EmbeddedVLMAdapter,
    data: RecognitionData,
    names: list[str],
    config: ProjectorConfig,
    rng: random.Random,
    copies: int,
) -> list[tuple[list[int], list[int], list[int]]]:
    """Random image-ICL sequences; image rows index the flattened ``[copies * n]`` features."""
    from PIL import Image

    placeholder = Image.new("RGB", (1, 1))  # stands for an image while tokenising
    sequences = []
    n = len(data.labels)
    for _ in range(config.batch_size):
        template = get_template(rng.choice(config.templates))
        rows = [rng.randrange(n) for _ in range(rng.randint(0, config.max_context_examples) + 1)]
        demos = [(placeholder, names[int(data.labels[r])]) for r in rows[:-1]]
        ids, images = adapter.prompt_ids(template.icl(demos, placeholder))
        answer_text = template.answer_prefix + names[int(data.labels[rows[-1]])]
        answer = adapter.tokenizer(answer_text, add_special_tokens=False)["input_ids"][: config.answer_tokens]
        feature_rows = [rng.randrange(copies) * n + r for r in rows]
        assert len(images) == len(feature_rows)
        sequences.append((ids, feature_rows, answer))
    return sequences


@torch.enable_grad()
def train_projector(
    adapter: EmbeddedVLMAdapter,
    features: torch.Tensor,
    data: RecognitionData,
    config: ProjectorConfig,
    on_step: Callable[[int, int, float], None] | None = None,
) -> list[dict]:
    """Train ``adapter.model.projector`` in place against the frozen LLM, on the recogniser's
    ``features`` of the tiles (see :func:`pooled_features`); returns the loss log."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    model = adapter.model
    names = [_name for _name in _entity_names(data.entity_ids)]
    copies = features.shape[0]  # features: [copies, n, F] from ``pooled_features``
    flat = features.reshape(-1, features.shape[-1]).to(adapter.device)
    model.llm.requires_grad_(False)
    model.encoder.requires_grad_(False)
    projector = model.projector
    projector.classifier.requires_grad_(False)
    trainable = [p for p in projector.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    log = []
    started = time.perf_counter()
    for step in range(config.steps):
        for group in optimiser.param_groups:
            warm = min(1.0, (step + 1) / 20)
            group["lr"] = config.lr * warm * 0.5 * (1 + math.cos(math.pi * step / config.steps))
        batch = AnswerBatch(adapter, sample_sequences(adapter, data, names, config, rng, copies))
        loss = answer_loss(adapter, batch, flat)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        log.append(
            {
                "stage": "projector",
                "step": step,
                "loss": round(loss.item(), 4),
                "temperature": round(projector.log_temperature.exp().item(), 4),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        if on_step is not None:
            on_step(step, config.steps, loss.item())
    adapter.clear_image_cache()
    return log


def answer_loss(adapter: EmbeddedVLMAdapter, batch: AnswerBatch, features: torch.Tensor) -> torch.Tensor:
    """The LLM's cross-entropy on the answer tokens, with images given by their ``features`` rows
    (a batch of text-only sequences has none)."""
    model = adapter.model
    image_tokens = (
        model.projector(features[batch.feature_rows]) if batch.feature_rows else None
    )  # [images, K, hidden]
    embeds = model.embed(batch.input_ids, image_embeds=image_tokens)
    hidden = model.llm.get_decoder()(inputs_embeds=embeds, attention_mask=batch.attention_mask)
    answered = batch.targets != -100
    logits = _lm_logits(model.llm, hidden.last_hidden_state[answered])  # [answers, vocab]
    return F.cross_entropy(logits, batch.targets[answered])


def _lm_logits(llm, hidden: torch.Tensor) -> torch.Tensor:
    """The LM head on chosen positions only (Gemma's 262k vocabulary makes full logits costly),
    finished as the model finishes them (``model_logits``: Gemma 2's soft-capping)."""
    return model_logits(llm.get_output_embeddings()(hidden), llm.config.get_text_config())


def _entity_names(entity_ids: list[str]) -> list[str]:
    from taskvec.models.embedded.load import entity_names

    return entity_names(entity_ids)
