"""Tests for the real-image suite (taskvec/tasks/suite) and its loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from taskvec.tasks import images as im


@pytest.fixture(scope="module")
def manifest() -> dict:
    return im.load_manifest()


def test_styles_match_manifest(manifest: dict) -> None:
    assert set(manifest["styles"]) == set(im.STYLES)
    assert manifest["held_out_style"] == im.HELD_OUT_STYLE == "openmoji"
    assert manifest["styles"][im.HELD_OUT_STYLE]["held_out"] is True
    for s in im.TRAINING_STYLES:
        assert manifest["styles"][s]["held_out"] is False
    for s, info in manifest["styles"].items():
        assert info["licence"] and info["version"]
        assert (im.SUITE_DIR / info["licence_file"]).is_file(), s


def test_entity_keys_and_known_entities(manifest: dict) -> None:
    ents = manifest["entities"]
    for key, e in ents.items():
        assert e["entity"] == key
        assert key == key.lower() and "fe0f" not in key.split("-")
        assert e["domain"] in im.DOMAINS
        assert e["name"]
    assert ents["1f415"]["name"] == "dog" and ents["1f415"]["domain"] == "animals"
    assert ents["1f1eb-1f1f7"]["name"] == "France" and ents["1f1eb-1f1f7"]["domain"] == "flags"
    assert im.normalise_entity("1F1EB-1F1F7") == "1f1eb-1f1f7"
    assert im.normalise_entity("\U0001f415") == "1f415"
    assert im.normalise_entity("2764-FE0F") == "2764"
    counts = {d: len(im.entities(d)) for d in im.TASK_DOMAINS}
    assert counts["flags"] >= 250 and counts["animals"] >= 100 and counts["foods"] >= 100


def test_manifest_deterministic(manifest: dict) -> None:
    text = (im.SUITE_DIR / "manifest.json").read_text(encoding="utf-8")
    again = json.dumps(json.loads(text), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    assert text == again  # written with sorted keys, stable formatting
    assert list(manifest["entities"]) == sorted(manifest["entities"])
    for e in manifest["entities"].values():
        assert e["styles"] == [s for s in im.STYLES if s in e["styles"]]  # canonical order


def test_every_task_entity_has_images() -> None:
    n = 0
    only_held_out = []
    for ent in im.entities(im.TASK_DOMAINS):
        styles = im.styles_for(ent)
        assert im.HELD_OUT_STYLE in styles, ent  # needed for held-out evaluation
        if len(styles) < 2:
            only_held_out.append(ent)  # e.g. Unicode 16 "root vegetable": OpenMoji only
        for s in styles:
            path = im.image_path(ent, s)
            with Image.open(path) as img:
                assert img.size == im.TASK_IMAGE_SIZE, (ent, s)
            n += 1
    assert n > 1500
    assert len(only_held_out) <= 3, only_held_out
    img = im.load_image("1f415", "twemoji")
    assert img.mode == "RGB" and img.size == im.TASK_IMAGE_SIZE
    assert img.getpixel((0, 0)) == (255, 255, 255)  # white background


def test_missing_image_error_names_entity_and_style() -> None:
    with pytest.raises(FileNotFoundError) as ei:
        im.image_path("1f1eb-1f1f7", "fluent")  # Fluent has no country flags
    assert "1f1eb-1f1f7" in str(ei.value) and "fluent" in str(ei.value)
    assert isinstance(ei.value, im.SuiteImageNotFound)
    with pytest.raises(FileNotFoundError):
        im.image_path("ffff", "noto")
    with pytest.raises(FileNotFoundError):
        im.image_path("1f415", "no_such_style")


def test_recognition_set_excludes_held_out(manifest: dict) -> None:
    rs = im.recognition_set()
    assert len(rs) > 5000
    assert im.HELD_OUT_STYLE not in set(rs.styles)
    assert im.HELD_OUT_STYLE not in manifest["recognition"]["entities"]
    assert not (im.SUITE_DIR / "recognition" / f"{im.HELD_OUT_STYLE}.webp").exists()
    assert im.HELD_OUT_STYLE not in set(im.recognition_set(styles=im.STYLES).styles)
    assert {"1f415", "1f1eb-1f1f7", "1f34e"} <= set(rs.entities)
    assert len(set(rs.entities)) > 1800
    # names are plain names, not task labels
    dog = [it for it in rs[:2000] if it.entity == "1f415"]
    assert dog and dog[0].name == "dog"
    item = rs[0]
    assert item.image.mode == "RGB" and item.image.size == im.RECOGNITION_IMAGE_SIZE
    arr = rs[:32].arrays()
    assert arr.shape == (32, 96, 96, 3) and arr.dtype == np.uint8
    assert arr.std() > 10  # real pictures, not blank tiles


def test_recognition_held_out_opt_in() -> None:
    rs = im.recognition_set(styles=[im.HELD_OUT_STYLE], exclude_held_out=False, domains=["animals"])
    assert len(rs) == len(im.entities("animals"))
    assert set(rs.styles) == {im.HELD_OUT_STYLE}
    assert rs[0].image.size == im.RECOGNITION_IMAGE_SIZE


def test_contact_sheet_writes_a_row_per_item_and_a_column_per_style(tmp_path) -> None:
    styles = ["noto", "twemoji", "fluent", "openmoji"]
    out = im.task_contact_sheet(
        ["country_capital", "food_color"], tmp_path / "sheet.png", styles=styles, per_task=2
    )
    with Image.open(out) as img:
        assert img.format == "PNG"
        assert img.width > len(styles) * 96 and img.height > 4 * 96


def _flag(code: str) -> str:
    return "-".join(f"{0x1F1E6 + ord(c) - ord('A'):x}" for c in code)


def test_no_recognition_picture_carries_two_names() -> None:
    """Territories flying their sovereign's flag (Svalbard, St. Martin, ...) draw the very same
    picture; the recognition set keeps it once, under the sovereign's name."""
    same = im.same_image_as("noto")
    assert same[_flag("SJ")] == _flag("NO") and same[_flag("BV")] == _flag("NO")
    assert same[_flag("MF")] == _flag("FR") and same[_flag("UM")] == _flag("US")
    for style in im.TRAINING_STYLES:
        mapping = im.same_image_as(style)
        assert not set(mapping) & set(mapping.values()), style  # a kept entity is never dropped
        distinct = im.recognition_set(styles=[style])
        everything = im.recognition_set(styles=[style], distinct_images=False)
        assert len(everything) - len(distinct) == len(mapping)
        assert not set(mapping) & set(distinct.entities)
    rs = im.recognition_set(styles=["noto"], distinct_images=False)
    tile = {e: i for i, e in enumerate(rs.entities)}
    norway, svalbard, sweden = (np.asarray(rs[tile[_flag(c)]].image, dtype=float) for c in ("NO", "SJ", "SE"))
    assert np.abs(norway - svalbard).mean() < 2  # the same picture (up to WebP coding)
    assert np.abs(norway - sweden).mean() > 20


def test_every_pipelines_options_refuse_an_unknown_style() -> None:
    """A typo'd style is refused with the options, before any work (a text run too, where it
    would change nothing: it is still a mistake)."""
    from taskvec.errors import ConfigError
    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.pipelines.analyze import AnalysisConfig
    from taskvec.pipelines.reproduce import ReproduceConfig

    for options, given in ((ExperimentConfig, {"style": "nope"}), (AnalysisConfig, {"style": "nope"})):
        with pytest.raises(ConfigError, match="unknown style 'nope'; the suite's styles are noto"):
            options.create(**given)
    with pytest.raises(ConfigError, match="unknown style 'nope'"):
        ReproduceConfig.create(styles=["noto", "nope"])
    assert ExperimentConfig.create(style=im.HELD_OUT_STYLE).style == im.HELD_OUT_STYLE
