"""Stage 1 of alignment: fine-tune EfficientNet-Lite0 into a recogniser of the suite's entities.

Trained on the recognition set only: every emoji entity with its plain name, in the training
styles (the held-out style is never seen). The labels are entity identities; the task labels
(capital, currency, Latin name, young, colour, flavour) never enter training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from taskvec.align.augment import augment
from taskvec.config import Seed
from taskvec.models.vision.efficientnet_lite import NORM_MEAN, NORM_STD, EfficientNetLite0, load_pretrained
from taskvec.tasks import images as suite


class RecogniserConfig(BaseModel):
    """Everything stage 1 depends on; part of the shipped weights' checksum."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_size: int = Field(default=96, ge=1)
    epochs: float = Field(default=16.0, gt=0, allow_inf_nan=False)
    batch_size: int = Field(default=64, ge=1)
    lr_backbone: float = Field(default=1.5e-3, gt=0)
    lr_head: float = Field(default=4e-3, gt=0)
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    frozen_blocks: int = 5  # stem + the first blocks (edges, colours) keep their ImageNet weights
    warmup_steps: int = Field(default=100, ge=0)
    seed: Seed = 0


def to_tensor(arrays: np.ndarray) -> torch.Tensor:
    """``uint8 [n, H, W, 3]`` -> ``float [n, 3, H, W]`` in [0, 1]."""
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).float().div_(255)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB -> the encoder's input range."""
    mean = torch.tensor(NORM_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(NORM_STD, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


@dataclass
class RecognitionData:
    """Training tiles with their entity index and whether a mirror image keeps their identity."""

    images: torch.Tensor  # [n, 3, 96, 96] in [0, 1]
    labels: torch.Tensor  # [n] entity indices into ``entity_ids``
    flippable: torch.Tensor  # [n] bool
    entity_ids: list[str]

    @classmethod
    def training(cls, entity_ids: list[str]) -> RecognitionData:
        recognition = suite.recognition_set()  # training styles only, by construction
        index = {entity: i for i, entity in enumerate(entity_ids)}
        labels = torch.tensor([index[e] for e in recognition.entities])
        flippable = torch.tensor([suite.entity_info(e)["domain"] != "flags" for e in recognition.entities])
        return cls(to_tensor(recognition.arrays()), labels, flippable, entity_ids)


class Recogniser(nn.Module):
    """The encoder with an entity head (the head becomes the projector's classifier)."""

    def __init__(self, encoder: EfficientNetLite0, num_entities: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.num_features, num_entities)
        self.dropout = nn.Dropout(0.2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.encoder.forward_pooled(images)))


def _parameter_groups(model: Recogniser, config: RecogniserConfig) -> list[dict]:
    encoder = model.encoder
    frozen = [encoder._conv_stem, encoder._bn0, *encoder._blocks[: config.frozen_blocks]]
    for module in frozen:
        module.requires_grad_(False)
    encoder._fc.requires_grad_(False)  # the ImageNet classifier is not used
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    return [
        {"params": trainable, "lr": config.lr_backbone},
        {"params": list(model.head.parameters()), "lr": config.lr_head},
    ]


def _frozen_in_eval(model: Recogniser, config: RecogniserConfig) -> None:
    """Frozen layers keep their ImageNet batch statistics."""
    encoder = model.encoder
    for module in (encoder._bn0, *encoder._blocks[: config.frozen_blocks]):
        module.eval()


@torch.enable_grad()
def train_recogniser(
    config: RecogniserConfig,
    entity_ids: list[str],
    on_step: Callable[[int, int, float], None] | None = None,
    data: RecognitionData | None = None,
    device: torch.device | str = "cpu",
) -> tuple[Recogniser, list[dict]]:
    """Fine-tune the ImageNet encoder as an entity classifier on ``device``; returns it (on the
    CPU) and a loss log. ``data`` defaults to the whole recognition set (the training styles);
    sampling and augmentation stay on the CPU, so the batches are the same on any device."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    data = data or RecognitionData.training(entity_ids)
    model = Recogniser(load_pretrained(), len(entity_ids)).to(device)
    optimiser = torch.optim.AdamW(_parameter_groups(model, config), weight_decay=config.weight_decay)
    base_lrs = [group["lr"] for group in optimiser.param_groups]
    steps_per_epoch = math.ceil(len(data.labels) / config.batch_size)
    total = max(1, int(config.epochs * steps_per_epoch))  # at least one step, however few epochs
    log: list[dict] = []
    started = time.perf_counter()
    order = torch.randperm(len(data.labels), generator=generator)
    cursor = 0
    for step in range(total):
        if cursor + config.batch_size > len(order):
            order, cursor = torch.randperm(len(data.labels), generator=generator), 0
        batch = order[cursor : cursor + config.batch_size]
        cursor += config.batch_size
        scale = min(1.0, (step + 1) / config.warmup_steps) * 0.5 * (1 + math.cos(math.pi * step / total))
        for group, base in zip(optimiser.param_groups, base_lrs, strict=True):
            group["lr"] = base * scale
        model.train()
        _frozen_in_eval(model, config)
        images = augment(data.images[batch], generator, data.flippable[batch]).to(device)
        labels = data.labels[batch].to(device)
        if config.image_size != images.shape[-1]:
            images = F.interpolate(images, size=config.image_size, mode="bilinear", antialias=True)
        logits = model(normalise(images))
        loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        accuracy = float((logits.argmax(-1) == labels).float().mean())
        log.append(
            {
                "stage": "recogniser",
                "step": step,
                "loss": round(loss.item(), 4),
                "train_accuracy": round(accuracy, 4),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        if on_step is not None:
            on_step(step, total, loss.item())
    return model.eval().cpu(), log
