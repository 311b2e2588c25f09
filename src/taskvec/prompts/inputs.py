"""Turn a task item into the input a prompt shows: its text, or its picture in one style."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from PIL import Image

from taskvec.errors import ImageError
from taskvec.prompts.template import Input
from taskvec.tasks.task import Item

Modality = Literal["text", "image"]
MODALITIES: tuple[Modality, ...] = ("text", "image")


def item_input(item: Item, modality: Modality, style: str | None = None) -> Input:
    """``item.input`` for text; the item's entity image in ``style`` for images."""
    if modality == "text":
        return item.input
    if modality != "image":
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    if not item.entity:
        raise ImageError(f"item {item.id!r} ({item.input}) has no entity, so it has no image")
    if not style:
        raise ImageError("image inputs need a style (e.g. 'noto'); see taskvec.tasks.images")
    from taskvec.tasks.images import load_image

    try:
        return load_image(item.entity, style)
    except FileNotFoundError as error:
        raise ImageError(f"item {item.id!r} ({item.input}): {error}") from error
    except OSError as error:
        raise ImageError(f"item {item.id!r} ({item.input}): unreadable image: {error}") from error


def sample_demos(
    pool: Sequence[Item], n: int, rng: random.Random, exclude: Item | None = None
) -> list[Item]:
    """``n`` distinct demonstrations from ``pool``, never the query item itself."""
    candidates = [item for item in pool if exclude is None or item.id != exclude.id]
    if len(candidates) < n:
        raise ValueError(f"need {n} demonstrations but only {len(candidates)} items are available")
    return rng.sample(candidates, n)


def ensure_rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")
