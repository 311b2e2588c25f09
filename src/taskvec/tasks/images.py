"""Loader for the real-image suite (emoji + flag images in several visual styles).

The suite lives in ``taskvec/tasks/suite`` (package data, built by
``taskvec data build``, i.e. the repository's ``scripts/suite_build.py``; see ``suite/README.md``):

* TASK images -- every entity of the task domains (flags, animals, foods) in every style
  that has it, 224x224 RGB on white: ``suite/images/<style>/<entity>.webp``.
* RECOGNITION set -- every emoji entity with its plain CLDR name, in the TRAINING styles
  only (never the held-out ``openmoji``), 96x96 tiles in one sprite sheet per style:
  ``suite/recognition/<style>.webp``.  Names only, never task labels.

An *entity* is the emoji code point sequence, lowercase hex joined by ``-``, FE0F removed:
dog = ``"1f415"``, France = ``"1f1eb-1f1f7"``.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, overload

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps
from pydantic import AfterValidator

from taskvec.tasks.task import is_picture_file

if TYPE_CHECKING:
    from taskvec.tasks.task import Item, Split, Task

SUITE_DIR: Path = Path(__file__).parent / "suite"
STYLES: tuple[str, ...] = (
    "noto",
    "twemoji",
    "fluent",
    "fluent_flat",
    "flag_icons",
    "noto_v1",
    "emojione",
    "fxemoji",
    "streamline",
    "openmoji",
)
HELD_OUT_STYLE: str = "openmoji"
#: the style of image inputs unless one is chosen (a training style of the embedded VLM)
DEFAULT_STYLE: str = "noto"
TRAINING_STYLES: tuple[str, ...] = tuple(s for s in STYLES if s != HELD_OUT_STYLE)
TASK_DOMAINS: tuple[str, ...] = ("flags", "animals", "foods")


def _known_style(style: str) -> str:
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; the suite's styles are {', '.join(STYLES)}")
    return style


#: a style in a pipeline's options, refused with the options if the suite has no such style
Style = Annotated[str, AfterValidator(_known_style)]
DOMAINS: tuple[str, ...] = (*TASK_DOMAINS, "other")
TASK_IMAGE_SIZE: tuple[int, int] = (224, 224)
RECOGNITION_IMAGE_SIZE: tuple[int, int] = (96, 96)

BUILD_HINT = (
    "build the suite with `taskvec data build` from a checkout of the taskvec repository (it runs "
    "scripts/suite_build.py); it needs npm, resvg-py and fontTools"
)


class SuiteImageNotFound(FileNotFoundError):
    """No image for ``entity`` in ``style`` (entity unknown, style lacks it, or suite not built)."""

    def __init__(self, entity: str, style: str, reason: str):
        self.entity = entity
        self.style = style
        super().__init__(f"no suite image for entity {entity!r} in style {style!r}: {reason}")


def normalise_entity(entity: str) -> str:
    """Accept ``"1F415"``, ``"2764-FE0F"``, ``"U+1F415"``, the emoji itself or its CLDR short name
    (``"pizza"``, ``"France"``: the suite's names, any case); return the key."""
    s = entity.strip()
    by_name = _keys_by_name().get(s.casefold())
    if by_name is not None:
        return by_name
    if s and not re.fullmatch(r"(?i)(u\+)?[0-9a-f]{1,6}([-_ ](u\+)?[0-9a-f]{1,6})*", s):
        parts = [f"{ord(c):x}" for c in s]  # the emoji characters themselves
    else:
        parts = [p.lower().removeprefix("u+") for p in re.split(r"[-_ ]", s) if p]
    return "-".join(p.lstrip("0").rjust(4, "0") for p in parts if p.lower() != "fe0f")


@functools.lru_cache(maxsize=1)
def _manifest(suite_dir: Path) -> dict[str, Any]:
    path = suite_dir / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"suite manifest missing at {path}; {BUILD_HINT}")
    return json.loads(path.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _keys_by_name() -> dict[str, str]:
    """Entity keys by their CLDR short name (case-folded); a name two entities share is left out
    (neither is meant more than the other). Empty where the suite is not built."""
    try:
        entries = load_manifest()["entities"].values()
    except FileNotFoundError:
        return {}
    keys: dict[str, str | None] = {}
    for entry in entries:
        name = str(entry["name"]).casefold()
        keys[name] = None if name in keys else entry["entity"]
    return {name: key for name, key in keys.items() if key is not None}


def load_manifest() -> dict[str, Any]:
    """The suite manifest: ``styles`` (source, version, licence, held_out...) and
    ``entities`` (entity -> {entity, name, domain, category, subcategory, styles, ...}).
    Cached; do not mutate."""
    return _manifest(SUITE_DIR)


def entities(domain: str | Iterable[str] | None = None) -> list[str]:
    """Entity keys in emoji order, optionally only those of ``domain`` (a name or several)."""
    ents = load_manifest()["entities"]
    doms = None if domain is None else ({domain} if isinstance(domain, str) else set(domain))
    keyed = sorted(ents.values(), key=lambda e: e["sort_order"])
    return [e["entity"] for e in keyed if doms is None or e["domain"] in doms]


def entity_info(entity: str) -> dict[str, Any]:
    key = normalise_entity(entity)
    try:
        return load_manifest()["entities"][key]
    except KeyError:
        raise KeyError(f"unknown suite entity {entity!r} (normalised {key!r})") from None


def name_of(entity: str) -> str:
    """Plain (CLDR short) name; for flags the place name ("France")."""
    return str(entity_info(entity)["name"])


def styles_for(entity: str) -> list[str]:
    """Styles in which the suite has an image of ``entity`` (task image or recognition tile)."""
    return list(entity_info(entity)["styles"])


def image_path(entity: str, style: str) -> Path:
    """Path of the 224x224 TASK image; raises :class:`SuiteImageNotFound` if there is none."""
    key = normalise_entity(entity)
    if style not in STYLES:
        raise SuiteImageNotFound(key, style, f"unknown style; known styles: {', '.join(STYLES)}")
    info = load_manifest()["entities"].get(key)
    if info is None:
        raise SuiteImageNotFound(key, style, "entity not in the suite manifest")
    if info["domain"] not in TASK_DOMAINS:
        raise SuiteImageNotFound(
            key, style, f"domain {info['domain']!r} has no task images (use recognition_set())"
        )
    if style not in info["styles"]:
        raise SuiteImageNotFound(key, style, f"source lacks it; available: {info['styles']}")
    path = SUITE_DIR / "images" / style / f"{key}.webp"
    if not path.exists():
        raise SuiteImageNotFound(key, style, f"file {path} missing; {BUILD_HINT}")
    return path


def load_image(entity: str, style: str) -> Image.Image:
    """The 224x224 RGB task image of ``entity`` in ``style`` (white background)."""
    with Image.open(image_path(entity, style)) as im:
        return im.convert("RGB")


# --------------------------------------------------------------------------- tasks


def _as_task(task: Task | str) -> Task:
    if isinstance(task, str):
        from taskvec.tasks.registry import load_task

        return load_task(task)
    return task


def on_white(image: Image.Image) -> Image.Image:
    """The picture as a viewer shows it, RGB on white (a new picture): turned upright by its EXIF
    orientation (a phone's photo is stored sideways), and transparent pixels white, as in the image
    suite, also where an RGB PNG marks one colour transparent (``tRNS``; it was shown black)."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB" and "transparency" not in image.info:
        return image.copy()
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _item_image(item: Item, style: str) -> Image.Image:
    """The picture of a task item: a suite entity in ``style``, or its own file (at its own size,
    on white, whatever the style)."""
    if not item.entity:
        raise SuiteImageNotFound("", style, f"item {item.id!r} ({item.input}) has no entity")
    if is_picture_file(item.entity):
        with Image.open(item.entity) as im:
            im.load()
            return on_white(im)
    return load_image(item.entity, style)


def task_styles(task: Task | str) -> list[str]:
    """Styles that have a picture for every item of both splits (flags: no ``fluent``); an item
    with a picture file of its own has it in every style."""
    task = _as_task(task)
    items = (*task.val, *task.test)

    def has(item: Item, style: str) -> bool:
        return bool(item.entity) and (is_picture_file(item.entity) or style in styles_for(item.entity))

    return [s for s in STYLES if all(has(item, s) for item in items)]


def task_images(
    task: Task | str, split: Split = "test", style: str = DEFAULT_STYLE, *, skip_missing: bool = False
) -> Iterator[tuple[Item, Image.Image]]:
    """``(item, RGB picture)`` for every item of a split of a task, in split order.

    ``task`` is a :class:`~taskvec.tasks.task.Task` (the object the protocol uses) or a
    built-in task name. A suite entity's picture is the 224x224 one in ``style``. An item with a
    picture file of its own (a task file's ``image``) gets that file as a run shows it: at its
    own size, transparent pixels on white, and the same whatever ``style`` says (styles are the
    suite's). A style that lacks an item's suite picture raises :class:`SuiteImageNotFound`, so
    an evaluation never silently runs on a subset; with ``skip_missing=True`` such items are
    left out instead.
    """
    task = _as_task(task)
    for item in task.split(split):
        try:
            image = _item_image(item, style)
        except SuiteImageNotFound:
            if skip_missing:
                continue
            raise
        yield item, image


# --------------------------------------------------------------------------- recognition


@functools.lru_cache(maxsize=8)
def _sheet(style: str) -> np.ndarray:
    path = SUITE_DIR / "recognition" / f"{style}.webp"
    if not path.exists():
        raise FileNotFoundError(f"recognition sheet {path} missing; {BUILD_HINT}")
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    arr.setflags(write=False)
    return arr


def _tile(style: str, index: int) -> np.ndarray:
    rec = load_manifest()["recognition"]
    (w, h), cols = rec["tile"], rec["cols"]
    r, c = divmod(index, cols)
    return _sheet(style)[r * h : (r + 1) * h, c * w : (c + 1) * w]


@dataclass(frozen=True)
class RecognitionItem:
    entity: str
    name: str
    style: str
    image: Image.Image


class RecognitionSet(Sequence[RecognitionItem]):
    """(entity, name, style, image) for teaching a model to see; 96x96 RGB.

    Index it (``rs[i]``), iterate it, or take everything at once with :meth:`arrays`.
    """

    def __init__(self, rows: list[tuple[str, str, str, int]]):
        # (entity, name, style, tile index or -1 for a held-out task image)
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> RecognitionItem: ...
    @overload
    def __getitem__(self, i: slice) -> RecognitionSet: ...
    def __getitem__(self, i: int | slice) -> RecognitionItem | RecognitionSet:
        if isinstance(i, slice):
            return RecognitionSet(self._rows[i])
        ent, name, style, idx = self._rows[i]
        return RecognitionItem(ent, name, style, Image.fromarray(self._array(ent, style, idx)))

    def __iter__(self) -> Iterator[RecognitionItem]:
        for i in range(len(self)):
            yield self[i]

    @staticmethod
    def _array(ent: str, style: str, idx: int) -> np.ndarray:
        if idx >= 0:
            return _tile(style, idx)
        im = load_image(ent, style).resize(RECOGNITION_IMAGE_SIZE, Image.Resampling.LANCZOS)
        return np.asarray(im)

    @property
    def entities(self) -> list[str]:
        return [r[0] for r in self._rows]

    @property
    def names(self) -> list[str]:
        return [r[1] for r in self._rows]

    @property
    def styles(self) -> list[str]:
        return [r[2] for r in self._rows]

    def arrays(self) -> np.ndarray:
        """All images as one ``uint8`` array of shape (N, 96, 96, 3)."""
        h, w = RECOGNITION_IMAGE_SIZE[1], RECOGNITION_IMAGE_SIZE[0]
        out = np.empty((len(self), h, w, 3), dtype=np.uint8)
        for i, (ent, _, style, idx) in enumerate(self._rows):
            out[i] = self._array(ent, style, idx)
        return out


def same_image_as(style: str) -> dict[str, str]:
    """``entity -> kept entity`` for recognition tiles of ``style`` that are pixel-identical to
    another entity's tile (Svalbard & Jan Mayen -> Norway, St. Martin -> France, ...)."""
    return dict(load_manifest()["recognition"].get("same_image", {}).get(style, {}))


def recognition_set(
    styles: Iterable[str] | None = None,
    *,
    exclude_held_out: bool = True,
    domains: Iterable[str] | None = None,
    distinct_images: bool = True,
) -> RecognitionSet:
    """Every (entity, plain name, style, 96px image) in the given styles (default: all training
    styles), ordered by style then emoji order.

    The held-out style (``openmoji``) is never part of the recognition sheets.  With
    ``exclude_held_out=False`` and ``"openmoji"`` among ``styles`` its *task* images
    (flags/animals/foods only), downscaled to 96px, are added -- for evaluation only.
    ``distinct_images`` (default) leaves out a tile that is pixel-identical to another
    entity's tile in the same style (see :func:`same_image_as`), so no picture carries two
    names; the kept name is the sovereign country's for flags.
    """
    wanted = list(TRAINING_STYLES if styles is None else styles)
    for s in wanted:
        if s not in STYLES:
            raise ValueError(f"unknown style {s!r}; known styles: {', '.join(STYLES)}")
    if exclude_held_out:
        wanted = [s for s in wanted if s != HELD_OUT_STYLE]
    doms = None if domains is None else set(domains)
    man = load_manifest()
    ents = man["entities"]
    rows: list[tuple[str, str, str, int]] = []
    for s in wanted:
        if s == HELD_OUT_STYLE:
            for e in entities(TASK_DOMAINS):
                info = ents[e]
                if s in info["styles"] and (doms is None or info["domain"] in doms):
                    rows.append((e, info["name"], s, -1))
            continue
        duplicates = same_image_as(s) if distinct_images else {}
        for idx, e in enumerate(man["recognition"]["entities"].get(s, [])):
            info = ents[e]
            if e not in duplicates and (doms is None or info["domain"] in doms):
                rows.append((e, info["name"], s, idx))
    return RecognitionSet(rows)


# --------------------------------------------------------------------------- contact sheet


def task_contact_sheet(
    tasks: Sequence[Task | str],
    path: str | Path,
    *,
    styles: Sequence[str] | None = None,
    per_task: int = 3,
    split: Split = "test",
    tile: int = 96,
) -> Path:
    """Write a PNG grid showing what each task looks like: ``per_task`` items of ``split`` per
    task (in split order, the first with distinct labels whose picture no earlier row shows),
    one column per style, each row captioned ``task`` and ``input -> label``. Cells a style
    lacks are light grey."""
    rows: list[tuple[str, str, str]] = []
    for task in map(_as_task, tasks):
        chosen: list[Item] = []
        for item in task.split(split):
            shown = {r[0] for r in rows} | {c.entity for c in chosen}
            if item.entity not in shown and item.label not in {c.label for c in chosen}:
                chosen.append(item)
            if len(chosen) == per_task:
                break
        rows += [(str(it.entity), task.name, _ascii(f"{it.input} -> {it.label}")) for it in chosen]
    return _grid(rows, list(STYLES if styles is None else styles), Path(path), tile)


def _ascii(text: str) -> str:
    """Captions without accents: the default bitmap font draws only ASCII reliably."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _grid(rows: list[tuple[str, str, str]], cols: list[str], out: Path, tile: int) -> Path:
    """Rows of (entity, caption, sub-caption) by style columns, as a PNG."""
    font = ImageFont.load_default()
    label_w, head_h, pad = 200, 30, 2
    width = label_w + len(cols) * (tile + pad)
    height = head_h + max(1, len(rows)) * (tile + pad)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, s in enumerate(cols):
        x = label_w + j * (tile + pad) + 2
        draw.text((x, 3), s[: tile // 6], fill=(0, 0, 0), font=font)
        if s == HELD_OUT_STYLE:
            draw.text((x, 15), "(held out)", fill=(180, 0, 0), font=font)
    for i, (e, caption, sub) in enumerate(rows):
        y = head_h + i * (tile + pad)
        draw.text((3, y + tile // 2 - 12), caption[:33], fill=(0, 0, 0), font=font)
        draw.text((3, y + tile // 2 + 2), sub[:33], fill=(110, 110, 110), font=font)
        for j, s in enumerate(cols):
            x = label_w + j * (tile + pad)
            try:
                im = load_image(e, s).resize((tile, tile), Image.Resampling.LANCZOS)
            except FileNotFoundError:
                sheet.paste((235, 235, 235), (x, y, x + tile, y + tile))
                continue
            sheet.paste(im, (x, y))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, "PNG", optimize=True)
    return out
