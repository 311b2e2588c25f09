"""Reproducible build of the real-image suite (emoji + flag images in several styles).

The suite is built from open emoji / flag sets fetched *by name and pinned version*
from the npm registry (``npm pack``) and Debian (``apt-get download``):

==============  ================================  ===========  ==============  =========
style           source                            licence      native          held out
==============  ================================  ===========  ==============  =========
``noto``        Debian ``fonts-noto-color-emoji``  OFL-1.1 /    136x128 bitmap  no
                (CBDT bitmaps read with fontTools) Apache-2.0
``twemoji``     npm ``@twemoji/svg``              CC-BY-4.0    SVG             no
``fluent``      npm ``fluentui-emoji`` (modern)    MIT          SVG             no
``fluent_flat`` npm ``fluentui-emoji`` (flat)      MIT          SVG             no
``flag_icons``  npm ``flag-icons`` (4x3)           MIT          SVG             no
``openmoji``    npm ``openmoji`` (color)           CC-BY-SA-4.0 SVG             **yes**
``noto_v1``     npm ``@iconify-json/noto-v1``      Apache-2.0   SVG             no
``emojione``    npm ``@iconify-json/emojione``     CC-BY-4.0    SVG             no
``fxemoji``     npm ``@iconify-json/fxemoji``      Apache-2.0   SVG             no
``streamline``  npm ``@iconify-json/streamline-     CC-BY-4.0    SVG             no
                emojis``
==============  ================================  ===========  ==============  =========

The last four are older or other emoji sets in Iconify's JSON format (one SVG body per icon,
named by the emoji's CLDR / Unicode name); they add drawings, not entities, so a recogniser
learns what a dog looks like across many artists (OpenMoji stays unseen).

Entities, categories and names come from npm ``emoji-datasource`` (``unified``, ``name``,
``category``, ``subcategory``) and the CLDR short names shipped in OpenMoji's
``data/openmoji.json`` (``annotation``).  An *entity* is the emoji code point sequence,
lowercase hex joined by ``-``, with ``fe0f`` removed (dog = ``1f415``, France = ``1f1eb-1f1f7``).

Output layout (``out_dir``, normally ``src/taskvec/tasks/suite``)::

    manifest.json                    styles + entities (deterministic, sorted keys)
    images/<style>/<entity>.webp     TASK images (domains flags/animals/foods), 224x224
    recognition/<style>.webp         RECOGNITION sprite sheet, 96x96 tiles, training styles only
    LICENSES/<source>.txt            licence text / attribution per source

(``README.md`` in that folder is written by hand and left alone by the build.)

Every image is RGB on a white background: the source is rendered with alpha, cropped to
its visible content, scaled to fit ``size*(1-2*margin)`` keeping the aspect ratio and
centred on a white square (so 4x3 flags become a 224x168 flag on a 224x224 white square).

Run:  ``python scripts/suite_build.py --workdir /tmp/suite-src`` (or ``taskvec data build`` from a
checkout). It is a repository script, not part of the installed package.

Build-time requirements: ``npm``, ``apt-get``/``dpkg-deb`` (or ``--noto-font PATH``),
``resvg-py``, ``fontTools``, ``Pillow``, ``numpy``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

# --------------------------------------------------------------------------- pins

NPM_PINS: dict[str, str] = {
    "emoji-datasource": "16.0.0",
    "@twemoji/svg": "15.0.0",
    "fluentui-emoji": "1.3.0",
    "openmoji": "17.0.0",
    "flag-icons": "7.5.0",
    "@iconify-json/noto-v1": "1.2.5",
    "@iconify-json/emojione": "1.2.3",
    "@iconify-json/fxemoji": "1.2.2",
    "@iconify-json/streamline-emojis": "1.2.4",
}
#: styles drawn from an Iconify JSON icon set: style -> npm package
ICONIFY_STYLES: dict[str, str] = {
    "noto_v1": "@iconify-json/noto-v1",
    "emojione": "@iconify-json/emojione",
    "fxemoji": "@iconify-json/fxemoji",
    "streamline": "@iconify-json/streamline-emojis",
}
DEBIAN_NOTO = ("fonts-noto-color-emoji", "2.042-0+deb12u1")
SYSTEM_NOTO = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")

TASK_SIZE = 224
RECOG_SIZE = 96
MARGIN = 0.04
TASK_DOMAINS = ("flags", "animals", "foods")
HELD_OUT_STYLE = "openmoji"
WEBP_TASK_QUALITY = 90
WEBP_RECOG_QUALITY = 90
SHEET_COLS = 64  # tiles per row in recognition sheets (64*96 = 6144 px wide)

STYLE_INFO: dict[str, dict[str, object]] = {
    "noto": {
        "source": f"debian:{DEBIAN_NOTO[0]}",
        "version": DEBIAN_NOTO[1],
        "licence": "OFL-1.1 (font) / Apache-2.0 (emoji images)",
        "licence_file": "LICENSES/noto-emoji.txt",
        "native_resolution": "136x128 bitmap (CBDT)",
        "held_out": False,
    },
    "twemoji": {
        "source": "npm:@twemoji/svg",
        "version": NPM_PINS["@twemoji/svg"],
        "licence": "CC-BY-4.0 (graphics); MIT (package)",
        "licence_file": "LICENSES/twemoji.txt",
        "native_resolution": "SVG (36x36 viewBox)",
        "held_out": False,
    },
    "fluent": {
        "source": "npm:fluentui-emoji (icons/modern)",
        "version": NPM_PINS["fluentui-emoji"],
        "licence": "MIT",
        "licence_file": "LICENSES/fluentui-emoji.txt",
        "native_resolution": "SVG (32x32 viewBox)",
        "held_out": False,
    },
    "fluent_flat": {
        "source": "npm:fluentui-emoji (icons/flat)",
        "version": NPM_PINS["fluentui-emoji"],
        "licence": "MIT",
        "licence_file": "LICENSES/fluentui-emoji.txt",
        "native_resolution": "SVG (32x32 viewBox)",
        "held_out": False,
    },
    "flag_icons": {
        "source": "npm:flag-icons (flags/4x3)",
        "version": NPM_PINS["flag-icons"],
        "licence": "MIT",
        "licence_file": "LICENSES/flag-icons.txt",
        "native_resolution": "SVG (640x480 viewBox, 4x3)",
        "held_out": False,
    },
    "openmoji": {
        "source": "npm:openmoji (color/svg)",
        "version": NPM_PINS["openmoji"],
        "licence": "CC-BY-SA-4.0",
        "licence_file": "LICENSES/openmoji.txt",
        "native_resolution": "SVG (72x72 viewBox)",
        "held_out": True,
    },
    "noto_v1": {
        "source": "npm:@iconify-json/noto-v1 (Noto Emoji v1, Google)",
        "version": NPM_PINS["@iconify-json/noto-v1"],
        "licence": "Apache-2.0",
        "licence_file": "LICENSES/iconify-noto-v1.txt",
        "native_resolution": "SVG (128x128 viewBox)",
        "held_out": False,
    },
    "emojione": {
        "source": "npm:@iconify-json/emojione (Emoji One 2.3, colour)",
        "version": NPM_PINS["@iconify-json/emojione"],
        "licence": "CC-BY-4.0",
        "licence_file": "LICENSES/iconify-emojione.txt",
        "native_resolution": "SVG (64x64 viewBox)",
        "held_out": False,
    },
    "fxemoji": {
        "source": "npm:@iconify-json/fxemoji (Firefox OS Emoji, Mozilla)",
        "version": NPM_PINS["@iconify-json/fxemoji"],
        "licence": "Apache-2.0",
        "licence_file": "LICENSES/iconify-fxemoji.txt",
        "native_resolution": "SVG (512x512 viewBox)",
        "held_out": False,
    },
    "streamline": {
        "source": "npm:@iconify-json/streamline-emojis (Streamline Emojis)",
        "version": NPM_PINS["@iconify-json/streamline-emojis"],
        "licence": "CC-BY-4.0",
        "licence_file": "LICENSES/iconify-streamline-emojis.txt",
        "native_resolution": "SVG (48x48 viewBox)",
        "held_out": False,
    },
}
#: training styles in the order they were added, the held-out style last
STYLES: tuple[str, ...] = (*(s for s in STYLE_INFO if s != HELD_OUT_STYLE), HELD_OUT_STYLE)


# --------------------------------------------------------------------------- keys


def entity_key(hexseq: str) -> str:
    """``"1F415"`` / ``"1F1EB-1F1F7"`` / ``"2764-FE0F"`` -> lowercase, '-'-joined, no fe0f."""
    parts = [p.lower() for p in re.split(r"[-_ ]", hexseq.strip()) if p]
    return "-".join(p.lstrip("0").rjust(4, "0") for p in parts if p.lower() != "fe0f")


def iso_to_entity(iso: str) -> str:
    """ISO 3166 alpha-2 (``"fr"``) -> regional-indicator entity (``"1f1eb-1f1f7"``)."""
    return "-".join(f"{0x1F1E6 + ord(c) - ord('a'):x}" for c in iso.lower())


def subdivision_to_entity(code: str) -> str:
    """flag-icons subdivision (``"gb-eng"``) -> tag sequence entity."""
    tags = "".join(f"-{0xE0000 + ord(c):x}" for c in code.replace("-", "").lower())
    return f"1f3f4{tags}-e007f"


def slugify(name: str) -> str:
    """CLDR short name -> fluentui-emoji file slug ("piñata" -> "pinata")."""
    s = unicodedata.normalize("NFKD", name)
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    s = s.replace("’", "").replace("'", "")
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")


# --------------------------------------------------------------------------- fetch


def _run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fetch_npm(name: str, version: str, workdir: Path) -> Path:
    """``npm pack name@version`` into ``workdir`` and untar; return the ``package`` dir."""
    safe = name.replace("@", "").replace("/", "-")
    dest = workdir / f"{safe}-{version}"
    pkg = dest / "package"
    if (pkg / "package.json").exists():
        return pkg
    workdir.mkdir(parents=True, exist_ok=True)
    tgz = workdir / f"{safe}-{version}.tgz"
    if not tgz.exists():
        _run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=workdir)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz) as tf:
        try:
            tf.extractall(dest, filter="data")
        except TypeError:  # Python without tarfile extraction filters
            tf.extractall(dest)  # noqa: S202 - npm tarballs of pinned versions
    return pkg


def fetch_noto(workdir: Path, font: Path | None = None) -> Path:
    """Return the NotoColorEmoji.ttf to use.

    Order: explicit ``font``; ``apt-get download`` of the pinned Debian package into
    ``workdir`` (then ``dpkg-deb -x``); the system font if it is installed.
    """
    if font is not None:
        return font
    name, ver = DEBIAN_NOTO
    dest = workdir / f"{name}-{ver}"
    ttf = dest / SYSTEM_NOTO.relative_to("/")
    if ttf.exists():
        return ttf
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        _run(["apt-get", "download", f"{name}={ver}"], cwd=workdir)
        deb = next(workdir.glob(f"{name}_*.deb"))
        _run(["dpkg-deb", "-x", str(deb), str(dest)], cwd=workdir)
        if ttf.exists():
            return ttf
    except (subprocess.CalledProcessError, StopIteration, FileNotFoundError) as exc:
        print(f"[suite] apt-get download {name} failed ({exc}); trying system font", file=sys.stderr)
    if SYSTEM_NOTO.exists():
        return SYSTEM_NOTO
    raise FileNotFoundError(
        f"NotoColorEmoji.ttf not found: install {name} (apt-get install {name}) or pass --noto-font"
    )


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Entity:
    entity: str
    unified: str
    name: str
    unicode_name: str
    domain: str
    category: str
    subcategory: str
    sort_order: int


def _domain(category: str, subcategory: str) -> str:
    if category == "Flags" and subcategory in ("country-flag", "subdivision-flag"):
        return "flags"
    if category == "Animals & Nature" and subcategory.startswith("animal-"):
        return "animals"
    if category == "Food & Drink" and subcategory != "dishware":
        return "foods"
    return "other"


def load_entities(datasource: Path, openmoji: Path) -> list[Entity]:
    rows = json.loads((datasource / "emoji.json").read_text(encoding="utf-8"))
    cldr: dict[str, str] = {}
    for e in json.loads((openmoji / "data" / "openmoji.json").read_text(encoding="utf-8")):
        cldr.setdefault(entity_key(e["hexcode"]), e["annotation"])
    out: list[Entity] = []
    for r in rows:
        key = entity_key(r["unified"])
        uname = (r.get("name") or r["short_name"]).lower()
        name = cldr.get(key) or uname
        if name.startswith("flag: "):
            name = name[len("flag: ") :]
        out.append(
            Entity(
                entity=key,
                unified=r["unified"].lower(),
                name=name,
                unicode_name=uname,
                domain=_domain(r["category"], r["subcategory"]),
                category=r["category"],
                subcategory=r["subcategory"],
                sort_order=int(r["sort_order"]),
            )
        )
    out.sort(key=lambda e: e.sort_order)
    return out


def _svg_index(folder: Path) -> dict[str, Path]:
    idx: dict[str, Path] = {}
    for p in sorted(folder.glob("*.svg")):
        try:
            idx.setdefault(entity_key(p.stem), p)
        except ValueError:
            continue
    return idx


# fluentui-emoji file slugs that differ from slugify(CLDR short name)
FLUENT_ALIASES: dict[str, str] = {
    "0023-20e3": "keycap-hashtag",
    "002a-20e3": "keycap-asterisk",
    "1f621": "pouting-face",
    "1f917": "hugging-face",
    "1f53a": "red-triangle",
    "1f959": "stuffedbread",
    "1f46f": "person-with-bunny-ears",
    "1f46f-200d-2640": "woman-with-bunny-ears",
    "1f46f-200d-2642": "man-with-bunny-ears",
    "1f471": "person-blonde-hair",
    "1f471-200d-2640": "woman-blonde-hair",
    "1f471-200d-2642": "man-blonde-hair",
    "1f93c": "person-wrestling",
    "1f93c-200d-2640": "woman-wrestling",
    "1f93c-200d-2642": "man-wrestling",
    "1f9cf": "person-deaf",
    "1f9cf-200d-2640": "woman-deaf",
    "1f9cf-200d-2642": "man-deaf",
    "1f9b8": "person-superhero",
    "1f9b9": "person-supervillain",
    "1f9d9": "person-mage",
    "1f9da": "person-fairy",
    "1f9db": "person-vampire",
    "1f9dc": "person-merpeople",
    "1f9dc-200d-2640": "woman-merpeople",
    "1f9dc-200d-2642": "man-merpeople",
    "1f9dd": "person-elf",
    "1f9de": "person-genie",
    "1f9df": "person-zombie",
}
# flag-icons files named as subdivisions that are emoji *country* flags
FLAG_ICONS_ALIASES: dict[str, str] = {"sh-ac": "ac", "sh-ta": "ta"}

# Territories that officially fly their sovereign's flag (Svalbard, St. Martin, U.S. Outlying
# Islands, Ceuta & Melilla, ...), so some styles draw them with exactly that flag. When a
# recognition tile is pixel-identical to another one, the sovereign's name is kept for it.
FLAG_TERRITORIES: frozenset[str] = frozenset(
    iso_to_entity(code)
    for code in ("ac", "bl", "bq", "bv", "cp", "dg", "ea", "gf", "gp", "hm")
    + ("mf", "pm", "re", "sh", "sj", "ta", "um", "wf", "yt")
)


def fluent_index(folder: Path, entities: list[Entity], cldr_names: dict[str, str]) -> dict[str, Path]:
    idx: dict[str, Path] = {}
    for e in entities:
        slug = FLUENT_ALIASES.get(e.entity) or slugify(cldr_names.get(e.entity, e.name))
        for cand in (slug, f"{slug}-default"):
            p = folder / f"{cand}.svg"
            if p.exists():
                idx[e.entity] = p
                break
    return idx


def flag_icons_index(folder: Path) -> dict[str, Path]:
    idx: dict[str, Path] = {}
    for p in sorted(folder.glob("*.svg")):
        code = FLAG_ICONS_ALIASES.get(p.stem.lower(), p.stem.lower())
        if re.fullmatch(r"[a-z]{2}", code):
            idx[iso_to_entity(code)] = p
        elif re.fullmatch(r"[a-z]{2}-[a-z]{2,3}", code):
            idx[subdivision_to_entity(code)] = p
    return idx


class IconifySet:
    """An icon set in Iconify's JSON format: SVG bodies by icon name, plain aliases, categories.

    Icons are named by slugs of their emoji's name ("dog", "flag-for-france", "redapple"), so an
    entity is matched by its CLDR and Unicode names; a match must agree on being a flag (an icon
    in the set's ``Flags`` category draws a flag entity and only such), which keeps "turkey" the
    bird apart from "turkey" the flag. An icon claimed by several entities goes to the one whose
    own name gives it and is dropped otherwise."""

    def __init__(self, package: Path):
        data = json.loads((package / "icons.json").read_text(encoding="utf-8"))
        self.icons: dict[str, dict] = data["icons"]
        self.defaults = {k: data[k] for k in ("left", "top", "width", "height") if k in data}
        self.aliases = {
            name: alias["parent"]
            for name, alias in data.get("aliases", {}).items()
            if set(alias) == {"parent"}  # an alias that flips or rotates draws something else
        }
        meta = json.loads((package / "metadata.json").read_text(encoding="utf-8"))
        self.flags = {
            self._resolve(n)
            for c, names in meta.get("categories", {}).items()
            if "flag" in c.lower()
            for n in names
        }

    def _resolve(self, name: str) -> str:
        while name not in self.icons and name in self.aliases:
            name = self.aliases[name]
        return name

    def svg(self, name: str) -> str:
        icon = self.icons[self._resolve(name)]
        box = {**{"left": 0, "top": 0, "width": 16, "height": 16}, **self.defaults, **icon}
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="{box["left"]} {box["top"]} {box["width"]} {box["height"]}">{icon["body"]}</svg>'
        )

    @staticmethod
    def _candidates(e: Entity) -> list[str]:
        slugs = [slugify(e.name), slugify(e.unicode_name)]
        if e.domain == "flags":
            slugs = [f"{prefix}{slug}" for slug in slugs for prefix in ("flag-for-", "flag-", "")]
        return [v for slug in slugs for v in (slug, slug.replace("-", ""))]

    def index(self, entities: list[Entity]) -> dict[str, str]:
        """``entity -> icon name`` for every entity the set draws."""
        known = set(self.icons) | set(self.aliases)
        claims: dict[str, list[tuple[bool, Entity]]] = {}
        for e in entities:
            for rank, candidate in enumerate(self._candidates(e)):
                if candidate not in known:
                    continue
                if (self._resolve(candidate) in self.flags) != (e.domain == "flags"):
                    continue
                claims.setdefault(self._resolve(candidate), []).append((rank == 0, e))
                break
        idx: dict[str, str] = {}
        for icon, claimants in claims.items():
            own = [e for exact, e in claimants if exact]
            if len(claimants) == 1 or len(own) == 1:
                idx[(own or [claimants[0][1]])[0].entity] = icon
        return idx


class NotoFont:
    """Read glyph PNGs straight from the CBDT table (native 136x128), sequences via GSUB."""

    def __init__(self, path: Path):
        from fontTools.ttLib import TTFont

        self.path = path
        font = TTFont(str(path))
        self.version = font["name"].getDebugName(5) or "?"
        self.cmap = font.getBestCmap()
        self.strike = font["CBDT"].strikeData[0]
        self.ligs: dict[tuple[str, ...], str] = {}
        for lookup in font["GSUB"].table.LookupList.Lookup:
            for st in lookup.SubTable:
                if st.LookupType == 7:
                    st = st.ExtSubTable
                if getattr(st, "LookupType", None) != 4:
                    continue
                for first, ligs in st.ligatures.items():
                    for lig in ligs:
                        self.ligs.setdefault((first, *lig.Component), lig.LigGlyph)

    def glyph(self, unified: str) -> str | None:
        cps = [int(h, 16) for h in unified.split("-")]
        for seq in (cps, [c for c in cps if c != 0xFE0F]):
            names = [self.cmap.get(c) for c in seq]
            if any(n is None for n in names):
                continue
            g = names[0] if len(names) == 1 else self.ligs.get(tuple(names))  # type: ignore[arg-type]
            if g is not None and g in self.strike:
                return g
        return None

    def png(self, glyph: str) -> bytes:
        g = self.strike[glyph]
        g.ensureDecompiled()
        return bytes(g.imageData)


# --------------------------------------------------------------------------- render


def normalise(rgba: Image.Image, size: int, margin: float = MARGIN, outline: bool = False) -> Image.Image:
    """Crop to visible content, fit into ``size*(1-2*margin)``, centre on white, RGB.

    ``outline`` draws a thin light-grey frame round the content (used for ``flag_icons``,
    whose rectangular flags with white fields, e.g. Japan, would otherwise melt into the
    white background; the other styles draw their own flag edges)."""
    rgba = rgba.convert("RGBA")
    alpha = rgba.getchannel("A").point(lambda a: 255 if a > 8 else 0)
    bbox = alpha.getbbox() or (0, 0, rgba.width, rgba.height)
    rgba = rgba.crop(bbox)
    inner = size - 2 * round(size * margin)
    scale = inner / max(rgba.width, rgba.height)
    w, h = max(1, round(rgba.width * scale)), max(1, round(rgba.height * scale))
    rgba = rgba.resize((w, h), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (255, 255, 255, 255))
    x0, y0 = (size - w) // 2, (size - h) // 2
    canvas.alpha_composite(rgba, (x0, y0))
    if outline:
        ImageDraw.Draw(canvas).rectangle(
            (x0, y0, x0 + w - 1, y0 + h - 1),
            outline=(190, 190, 190, 255),
            width=max(1, size // 112),
        )
    return canvas.convert("RGB")


def render_svg(source: Path | str, px: int) -> Image.Image:
    """Render an SVG file, or an SVG document given as a string, at ``px`` x ``px``."""
    import resvg_py

    if isinstance(source, str) and source.startswith("<svg"):
        data = resvg_py.svg_to_bytes(svg_string=source, width=px, height=px)
    else:
        data = resvg_py.svg_to_bytes(svg_path=str(source), width=px, height=px)
    return Image.open(io.BytesIO(bytes(data))).convert("RGBA")


def _render_job(
    job: tuple[str, str, str, bool],
) -> tuple[str, str, Image.Image | None, Image.Image]:
    """(style, entity, src, is_task) -> (style, entity, task_img | None, recog_img)."""
    style, ent, src, is_task = job
    if style == "noto":
        font = _noto_cache(src.split("#", 1)[0])
        raw = Image.open(io.BytesIO(font.png(src.split("#", 1)[1]))).convert("RGBA")
    else:
        raw = render_svg(
            src if src.startswith("<svg") else Path(src), 2 * (TASK_SIZE if is_task else RECOG_SIZE)
        )
    frame = style == "flag_icons"
    task = normalise(raw, TASK_SIZE, outline=frame) if is_task else None
    recog = normalise(raw, RECOG_SIZE, outline=frame)
    return style, ent, task, recog


_NOTO: dict[str, NotoFont] = {}


def _noto_cache(path: str) -> NotoFont:
    if path not in _NOTO:
        _NOTO[path] = NotoFont(Path(path))
    return _NOTO[path]


# --------------------------------------------------------------------------- licences

ATTRIBUTION = {
    "noto-emoji.txt": """\
Noto Color Emoji (Google), Debian package fonts-noto-color-emoji {noto}.
Font: SIL Open Font License 1.1. Emoji image resources: Apache License 2.0.
Flag images in the font are in the public domain or otherwise exempt from copyright.
Images in style 'noto' were extracted from the font's CBDT bitmaps and rescaled
onto white.
https://github.com/googlefonts/noto-emoji
""",
    "twemoji.txt": """\
Twemoji graphics, npm @twemoji/svg {twemoji}.
Copyright 2019 Twitter, Inc and other contributors; 2023 jdecked and other contributors.
Graphics licensed under CC-BY 4.0: https://creativecommons.org/licenses/by/4.0/
Images in style 'twemoji' were rendered from the SVGs (resvg) and rescaled onto white.
https://github.com/jdecked/twemoji
""",
    "fluentui-emoji.txt": """\
Fluent Emoji (Microsoft), via npm fluentui-emoji {fluent}.
Original artwork: https://github.com/microsoft/fluentui-emoji
(MIT License, Copyright (c) Microsoft Corporation).
Images in styles 'fluent' (icons/modern) and 'fluent_flat' (icons/flat) were rendered
from the SVGs (resvg) and rescaled onto white.

""",
    "flag-icons.txt": """\
flag-icons, npm flag-icons {flags} (flags/4x3). https://github.com/lipis/flag-icons
Images in style 'flag_icons' were rendered from the SVGs (resvg), framed in light grey
and placed on white.

""",
    "openmoji.txt": """\
OpenMoji - the open-source emoji and icon project. https://openmoji.org/
npm openmoji {openmoji}. License: CC BY-SA 4.0.
Images in style 'openmoji' (task images only) are ADAPTED from OpenMoji (rendered from
the colour SVGs with resvg, cropped, rescaled and placed on a white background) and are
distributed under the same licence, CC BY-SA 4.0. They are the held-out style: never
used for recognition training. The CLDR short names in manifest.json were read from
OpenMoji's data/openmoji.json (they are Unicode CLDR annotations, Unicode License v3).

""",
    "emoji-datasource.txt": """\
emoji-datasource {datasource} (code points, Unicode names, categories).
https://github.com/iamcal/emoji-data

""",
}


def write_licences(out: Path, pkgs: dict[str, Path]) -> None:
    lic = out / "LICENSES"
    lic.mkdir(parents=True, exist_ok=True)
    fmt = {
        "noto": DEBIAN_NOTO[1],
        "twemoji": NPM_PINS["@twemoji/svg"],
        "fluent": NPM_PINS["fluentui-emoji"],
        "flags": NPM_PINS["flag-icons"],
        "openmoji": NPM_PINS["openmoji"],
        "datasource": NPM_PINS["emoji-datasource"],
    }
    extra = {
        "fluentui-emoji.txt": pkgs["fluentui-emoji"] / "LICENSE",
        "flag-icons.txt": pkgs["flag-icons"] / "LICENSE",
        "openmoji.txt": pkgs["openmoji"] / "LICENSE.txt",
        "emoji-datasource.txt": pkgs["emoji-datasource"] / "LICENSE",
        "twemoji.txt": pkgs["@twemoji/svg"] / "license",
    }
    for fname, text in ATTRIBUTION.items():
        body = text.format(**fmt)
        src = extra.get(fname)
        if src is not None and src.exists():
            head = "Package licence file" if fname == "twemoji.txt" else "Licence"
            body += f"\n----- {head} ({src.name}) -----\n\n" + src.read_text(encoding="utf-8")
        (lic / fname).write_text(body, encoding="utf-8")
    for style, package in ICONIFY_STYLES.items():
        _write_iconify_licence(lic / Path(str(STYLE_INFO[style]["licence_file"])).name, style, pkgs[package])


def _write_iconify_licence(path: Path, style: str, package: Path) -> None:
    """Attribution of an Iconify icon set, from the set's own ``info.json`` (author, licence)."""
    info = json.loads((package / "info.json").read_text(encoding="utf-8"))
    meta = json.loads((package / "package.json").read_text(encoding="utf-8"))
    author, licence = info.get("author", {}), info.get("license", {})
    path.write_text(
        f"{info.get('name', style)}{' ' + info['version'] if info.get('version') else ''}, "
        f"by {author.get('name', '?')} ({author.get('url', '')}),\n"
        f"via npm {meta['name']} {meta['version']} (Iconify JSON).\n"
        f"Licence: {licence.get('title', '?')} ({licence.get('spdx', '?')}): {licence.get('url', '')}\n"
        f"Images in style '{style}' were rendered from the icon set's SVG bodies (resvg), cropped,\n"
        "rescaled and placed on a white background (task images and recognition tiles).\n",
        encoding="utf-8",
    )


# --------------------------------------------------------------------------- build


def same_image_groups(tiles: dict[str, Image.Image], sort_order: dict[str, int]) -> dict[str, str]:
    """``entity -> kept entity`` for tiles that are pixel-identical to another entity's tile.

    One picture with two names (Norway / Svalbard & Jan Mayen, France / St. Martin, 'family' /
    'family: adult, adult, child') would teach a recogniser contradictory labels. The kept
    entity is the one that is not a flag territory, then the first in emoji order. Compared
    before WebP compression, so the result does not depend on a tile's place in its sheet.
    """
    by_pixels: dict[bytes, list[str]] = {}
    for entity in sorted(tiles, key=sort_order.__getitem__):
        by_pixels.setdefault(tiles[entity].tobytes(), []).append(entity)
    dropped: dict[str, str] = {}
    for group in by_pixels.values():
        if len(group) > 1:
            keep = min(group, key=lambda e: (e in FLAG_TERRITORIES, sort_order[e]))
            dropped.update({e: keep for e in group if e != keep})
    return dict(sorted(dropped.items()))


def _sheet(tiles: list[Image.Image], size: int) -> Image.Image:
    rows = max(1, math.ceil(len(tiles) / SHEET_COLS))
    cols = min(SHEET_COLS, max(1, len(tiles)))
    sheet = Image.new("RGB", (cols * size, rows * size), (255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % SHEET_COLS) * size, (i // SHEET_COLS) * size))
    return sheet


def build_suite(
    workdir: Path,
    out_dir: Path,
    *,
    noto_font: Path | None = None,
    workers: int = 2,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, object]:
    """Fetch the pinned sources into ``workdir``, render, and write the suite to ``out_dir``.

    ``limit`` keeps only the first N entities of each domain (for quick smoke builds).
    Returns the manifest that was written.
    """
    t0 = time.time()
    workdir = Path(workdir)
    out_dir = Path(out_dir)
    pkgs = {name: fetch_npm(name, ver, workdir) for name, ver in NPM_PINS.items()}
    font_path = fetch_noto(workdir, noto_font)
    noto = NotoFont(font_path)
    log(f"[suite] sources fetched ({time.time() - t0:.0f}s); noto font {font_path} ({noto.version})")

    entities = load_entities(pkgs["emoji-datasource"], pkgs["openmoji"])
    if limit is not None:
        seen: Counter[str] = Counter()
        kept = []
        for e in entities:
            seen[e.domain] += 1
            if seen[e.domain] <= limit:
                kept.append(e)
        entities = kept
    cldr_raw = {
        entity_key(e["hexcode"]): e["annotation"]
        for e in json.loads((pkgs["openmoji"] / "data/openmoji.json").read_text(encoding="utf-8"))
    }
    fl = pkgs["fluentui-emoji"] / "icons"
    svg_sources: dict[str, dict[str, Path]] = {
        "twemoji": _svg_index(pkgs["@twemoji/svg"]),
        "fluent": fluent_index(fl / "modern", entities, cldr_raw),
        "fluent_flat": fluent_index(fl / "flat", entities, cldr_raw),
        "flag_icons": flag_icons_index(pkgs["flag-icons"] / "flags" / "4x3"),
        "openmoji": _svg_index(pkgs["openmoji"] / "color" / "svg"),
    }
    iconify: dict[str, dict[str, str]] = {}  # style -> entity -> SVG document
    for style, package in ICONIFY_STYLES.items():
        icon_set = IconifySet(pkgs[package])
        iconify[style] = {ent: icon_set.svg(icon) for ent, icon in icon_set.index(entities).items()}

    jobs: list[tuple[str, str, str, bool]] = []
    for e in entities:
        is_task = e.domain in TASK_DOMAINS
        g = noto.glyph(e.unified)
        if g is not None:
            jobs.append(("noto", e.entity, f"{font_path}#{g}", is_task))
        for style, idx in svg_sources.items():
            if style == "flag_icons" and e.domain != "flags":
                continue
            if style == HELD_OUT_STYLE and not is_task:
                continue  # held-out style: task images only, never recognition
            p = idx.get(e.entity)
            if p is not None:
                jobs.append((style, e.entity, str(p), is_task))
        for style, drawn in iconify.items():
            if e.entity in drawn:
                jobs.append((style, e.entity, drawn[e.entity], is_task))
    log(f"[suite] {len(entities)} entities, {len(jobs)} render jobs")

    manifest = replace_suite(
        out_dir, lambda staging: _render_suite(entities, jobs, pkgs, noto, staging, workers, t0, log)
    )
    log(f"[suite] done in {time.time() - t0:.0f}s -> {out_dir}")
    return manifest


def replace_suite(final: Path, render: Callable[[Path], dict[str, object]]) -> dict[str, object]:
    """``render`` a suite into a staging folder beside ``final`` and swap it in only once whole: a
    build that fails (a worker, a full disk) leaves the suite it was to replace as it was (it
    deleted the shipped images first). ``final``'s README.md is kept."""
    final.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.building-"))
    try:
        manifest = render(staging)
        for part in (*SUITE_PARTS, "manifest.json"):
            old = final / part
            if old.is_dir():
                shutil.rmtree(old)
            else:
                old.unlink(missing_ok=True)
            (staging / part).rename(old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


#: the folders a build writes (with manifest.json); the suite folder's README.md is kept
SUITE_PARTS = ("images", "recognition", "LICENSES")


def _render_suite(
    entities, jobs, pkgs, noto, out_dir: Path, workers: int, t0: float, log
) -> dict[str, object]:
    """Render ``jobs`` and write the suite's images, recognition sheets, licences and manifest
    into ``out_dir``."""

    styles_of: dict[str, list[str]] = {e.entity: [] for e in entities}
    recog: dict[str, dict[str, Image.Image]] = {s: {} for s in STYLES if s != HELD_OUT_STYLE}
    order = {s: i for i, s in enumerate(STYLES)}

    def consume(results: Iterable[tuple[str, str, Image.Image | None, Image.Image]]) -> None:
        for n, (style, ent, task, rec) in enumerate(results, 1):
            styles_of[ent].append(style)
            if task is not None:
                d = out_dir / "images" / style
                d.mkdir(parents=True, exist_ok=True)
                task.save(d / f"{ent}.webp", "WEBP", quality=WEBP_TASK_QUALITY, method=6)
            if style != HELD_OUT_STYLE:
                recog[style][ent] = rec
            if n % 500 == 0:
                log(f"[suite]   {n}/{len(jobs)} rendered ({time.time() - t0:.0f}s)")

    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            consume(ex.map(_render_job, jobs, chunksize=16))
    else:
        consume(map(_render_job, jobs))

    # recognition sheets (training styles only), tiles in manifest entity order
    (out_dir / "recognition").mkdir(parents=True, exist_ok=True)
    recog_index: dict[str, list[str]] = {}
    same_image: dict[str, dict[str, str]] = {}
    sort_order = {e.entity: e.sort_order for e in entities}
    for style, imgs in recog.items():
        ents = [e.entity for e in entities if e.entity in imgs]
        if not ents:
            continue
        recog_index[style] = ents
        same_image[style] = same_image_groups(imgs, sort_order)
        _sheet([imgs[x] for x in ents], RECOG_SIZE).save(
            out_dir / "recognition" / f"{style}.webp", "WEBP", quality=WEBP_RECOG_QUALITY, method=6
        )

    write_licences(out_dir, pkgs)
    styles_meta = {}
    for s in STYLES:
        info = dict(STYLE_INFO[s])
        if s == "noto":
            info["font_version"] = noto.version
        styles_meta[s] = info
    manifest: dict[str, object] = {
        "format": 1,
        "task_domains": list(TASK_DOMAINS),
        "held_out_style": HELD_OUT_STYLE,
        "task_image": {
            "size": [TASK_SIZE, TASK_SIZE],
            "path": "images/{style}/{entity}.webp",
            "format": f"WEBP q{WEBP_TASK_QUALITY}",
            "margin": MARGIN,
        },
        "recognition": {
            "tile": [RECOG_SIZE, RECOG_SIZE],
            "cols": SHEET_COLS,
            "path": "recognition/{style}.webp",
            "format": f"WEBP q{WEBP_RECOG_QUALITY}",
            "entities": recog_index,
            "same_image": same_image,
        },
        "sources": {
            **{f"npm:{k}": v for k, v in NPM_PINS.items()},
            f"debian:{DEBIAN_NOTO[0]}": DEBIAN_NOTO[1],
        },
        "styles": styles_meta,
        "entities": {
            e.entity: {
                "entity": e.entity,
                "name": e.name,
                "unicode_name": e.unicode_name,
                "domain": e.domain,
                "category": e.category,
                "subcategory": e.subcategory,
                "sort_order": e.sort_order,
                "styles": sorted(styles_of[e.entity], key=order.__getitem__),
            }
            for e in entities
        },
    }
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return manifest


def summarise(manifest: dict[str, object]) -> str:
    ents = manifest["entities"]  # type: ignore[index]
    counts: Counter[tuple[str, str]] = Counter()
    dom: Counter[str] = Counter()
    for e in ents.values():  # type: ignore[union-attr]
        dom[e["domain"]] += 1
        for s in e["styles"]:
            counts[(e["domain"], s)] += 1
    lines = ["domain      n     " + " ".join(f"{s:>11}" for s in STYLES)]
    for d in (*TASK_DOMAINS, "other"):
        lines.append(f"{d:<10}{dom[d]:>5}     " + " ".join(f"{counts[(d, s)]:>11}" for s in STYLES))
    return "\n".join(lines)


#: the package's suite folder in this checkout (the default output)
SUITE_DIR = Path(__file__).resolve().parents[1] / "src" / "taskvec" / "tasks" / "suite"


def main_build(workdir: Path, out: Path | None = None, *, workers: int = 2) -> dict[str, object]:
    """What ``taskvec data build`` runs: build into ``out`` (default: the package's suite) and
    print the per-domain/style counts, so the CLI needs no knowledge of the build's options."""
    if shutil.which("npm") is None:
        raise SystemExit("`taskvec data build` needs npm on PATH (it runs `npm pack` for each source)")
    for module, pip_name in (("resvg_py", "resvg-py"), ("fontTools", "fonttools")):
        try:
            __import__(module)
        except ImportError:
            raise SystemExit(f"`taskvec data build` needs {pip_name}: pip install {pip_name}") from None
    out_dir = Path(out) if out else SUITE_DIR
    manifest = build_suite(Path(workdir), out_dir, workers=workers)
    print(summarise(manifest))
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python scripts/suite_build.py", description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", type=Path, default=Path("build/suite-src"), help="download/extract dir")
    ap.add_argument("--out", type=Path, default=SUITE_DIR, help="suite output dir")
    ap.add_argument("--noto-font", type=Path, default=None, help="NotoColorEmoji.ttf to use (skip apt)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="keep N entities per domain (smoke build)")
    a = ap.parse_args(argv)
    m = build_suite(a.workdir, a.out, noto_font=a.noto_font, workers=a.workers, limit=a.limit)
    print(summarise(m))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
