"""Turn a task item into the input a prompt shows: its text, or its picture in one style."""

from __future__ import annotations

import hashlib
import random
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from taskvec.errors import ConfigError, ImageError
from taskvec.prompts.template import Input
from taskvec.storage.lru import LruCache
from taskvec.tasks.images import on_white
from taskvec.tasks.task import IMAGE_SUFFIXES, Item, is_picture_file

Modality = Literal["text", "image"]
MODALITIES: tuple[Modality, ...] = ("text", "image")


MAX_IMAGE_PIXELS = 4096 * 4096
#: modes whose RGB is exact (a 16-bit, CMYK or float picture would be shown with colours PIL guesses)
ACCEPTED_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA", "1")
#: decoded pixels ``open_image`` keeps (a reproduction shows each suite picture thousands of
#: times: as a demonstration in many prompts, in every condition and seed)
DECODED_CACHE_BYTES = 256 << 20


def is_own_picture(item: Item) -> bool:
    """Whether an item's picture is an image file of its own (no style draws it), not an
    image-suite entity drawn in the run's style."""
    return is_picture_file(item.entity)


def image_file(item: Item, style: str | None) -> Path:
    """Where an item's picture lives: a file named by the item, or the suite image of its entity."""
    if not item.entity:
        raise ImageError(
            f"item {item.id!r} ({item.input}) has no 'image' (or 'entity') field, so it has no picture; "
            "add one or use text queries"
        )
    if is_own_picture(item):
        return Path(item.entity)
    if not style:
        raise ImageError("image inputs need a style (e.g. 'noto'); see taskvec.tasks.images")
    from taskvec.tasks.images import image_path, load_manifest, normalise_entity

    try:
        known = normalise_entity(item.entity) in load_manifest()["entities"]
    except FileNotFoundError:
        known = True  # no suite built: ``image_path`` says how to build it
    if not known:
        raise ImageError(
            f"item {item.id!r} ({item.input}): image {item.entity!r} is neither an image file (no such "
            f"file; image files end in {', '.join(IMAGE_SUFFIXES)}) nor an image-suite entity (an emoji "
            "or its code points, e.g. 1f415); fix the item's 'image' field"
        )

    try:
        return image_path(item.entity, style)
    except FileNotFoundError as error:
        raise ImageError(f"item {item.id!r} ({item.input}): {error}") from error


def open_image(path: Path, what: str = "image") -> Image.Image:
    """Open and fully decode an image, refusing missing, truncated, huge or odd-mode files.

    A file read before and unchanged since (same inode, size, modification and change times) gives
    the same decoded picture object again, its digest taken once: the picture is shared by every
    prompt that shows it, so it must never be changed in place (make a new one)."""
    if not path.is_file():
        raise ImageError(
            f"{what}: image file not found: {path}; fix the item's 'image' field or add the file"
        )
    stat = path.stat()
    key = (str(path.absolute()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    image = _DECODED.get(key)
    if image is None:
        image = _decode(path, what)
        _remember_digest(image)
        _DECODED.put(key, image)
    return image


def _decode(path: Path, what: str) -> Image.Image:
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ImageError(
                    f"{what}: {path} is {image.width}x{image.height}, larger than the "
                    f"{MAX_IMAGE_PIXELS}-pixel limit; downscale it"
                )
            if image.mode not in ACCEPTED_MODES:
                raise ImageError(
                    f"{what}: {path} has mode {image.mode!r} (accepted: {', '.join(ACCEPTED_MODES)}); "
                    "save it as RGB"
                )
            frames = getattr(image, "n_frames", 1)  # PIL's count, on formats that can hold several
            if frames > 1:
                raise ImageError(
                    f"{what}: {path} is animated ({frames} frames); a prompt shows one picture: "
                    "save the frame you mean as a still image"
                )
            image.load()
            return ensure_rgb(image)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageError(
            f"{what}: {path} is unreadable or truncated ({error}); re-export or replace the file"
        ) from error


def _size(image: Image.Image) -> int:
    return image.width * image.height * len(image.getbands())


_DECODED: LruCache[tuple, Image.Image] = LruCache(DECODED_CACHE_BYTES, _size)


def image_digest(image: Image.Image) -> str:
    """Content hash of a picture (mode, size and pixels). Pictures from ``open_image`` were hashed
    when decoded (prompts show them thousands of times, and every content key of a prompt, shared
    work or an image encoding, asks); any other picture is hashed on every call, so one changed in
    place is never taken for what it was."""
    known = _DIGESTS.get(id(image))
    if known is not None and known[0]() is image:
        return known[1]
    return _hash_pixels(image)


def _hash_pixels(image: Image.Image) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{image.mode}:{image.size}:".encode())
    digest.update(np.asarray(image).tobytes())
    return digest.hexdigest()


def _remember_digest(image: Image.Image) -> None:
    identity = id(image)

    def forget(ref: weakref.ref) -> None:
        if _DIGESTS.get(identity, (None,))[0] is ref:
            del _DIGESTS[identity]

    _DIGESTS[identity] = (weakref.ref(image, forget), _hash_pixels(image))


#: digests of the live pictures ``open_image`` decoded: id -> (a weak reference to the picture,
#: its digest); an entry leaves with its picture
_DIGESTS: dict[int, tuple[weakref.ref, str]] = {}


def item_input(item: Item, modality: Modality, style: str | None = None) -> Input:
    """``item.input`` for text; the item's picture (in ``style`` for suite images) for images."""
    if modality == "text":
        return item.input
    if modality != "image":
        raise ConfigError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    return open_image(image_file(item, style), what=f"item {item.id!r} ({item.input})")


def sample_demos(pool: Sequence[Item], n: int, rng: random.Random, exclude: Item | None = None) -> list[Item]:
    """``n`` distinct demonstrations from ``pool``, never the query item itself."""
    candidates = [item for item in pool if exclude is None or item.id != exclude.id]
    if len(candidates) < n:
        raise ValueError(f"need {n} demonstrations but only {len(candidates)} items are available")
    return rng.sample(candidates, n)


#: RGB on white (transparent pixels white): one rule for a run's pictures and ``task_images``
ensure_rgb = on_white
