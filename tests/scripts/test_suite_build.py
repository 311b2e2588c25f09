"""Matching an Iconify icon set's names to suite entities (``scripts/suite_build.py``, run by
``taskvec data build``), and the command's answer where the script is not there.

Iconify sets name icons by slugs of the emoji's name; the build must pick each entity's icon by
its CLDR or Unicode name, keep flags and non-flags apart (the bird "turkey" is not the flag
"turkey"), follow plain aliases only, and never give one icon to two entities."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskvec import cli

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "suite_build.py"
_spec = importlib.util.spec_from_file_location("suite_build", SCRIPT)
suite_build = importlib.util.module_from_spec(_spec)
sys.modules["suite_build"] = suite_build  # its dataclasses look their module up
_spec.loader.exec_module(suite_build)
Entity, IconifySet = suite_build.Entity, suite_build.IconifySet


def _entity(key: str, name: str, domain: str, unicode_name: str | None = None) -> Entity:
    return Entity(key, key, name, unicode_name or name, domain, "", "", 0)


def _icon_set(tmp_path, icons: dict, aliases: dict, flags: list[str]) -> IconifySet:
    body = '<rect width="4" height="4" fill="#123456"/>'
    (tmp_path / "icons.json").write_text(
        json.dumps({"icons": {n: {"body": body} for n in icons}, "aliases": aliases, "width": 8, "height": 8})
    )
    (tmp_path / "metadata.json").write_text(json.dumps({"categories": {"Flags": flags, "Animals": []}}))
    return IconifySet(tmp_path)


def test_entities_match_their_icons_by_name_and_flags_stay_flags(tmp_path):
    icons = ["dog", "turkey", "flag-for-france", "mousefacex", "redapple", "cat-face"]
    aliases = {"cat": {"parent": "cat-face"}, "mirrored-dog": {"parent": "dog", "hFlip": True}}
    icon_set = _icon_set(tmp_path, icons, aliases, flags=["turkey", "flag-for-france"])
    entities = [
        _entity("1f415", "dog", "animals"),
        _entity("1f983", "turkey", "animals"),  # the bird: only a flag is called "turkey" here
        _entity("1f1f9-1f1f7", "Türkiye", "flags", "flag: Turkey"),
        _entity("1f1eb-1f1f7", "France", "flags"),
        _entity("1f34e", "red apple", "foods"),  # "redapple": the hyphen-less spelling
        _entity("1f408", "cat", "animals"),  # through a plain alias
    ]
    index = icon_set.index(entities)
    assert index == {
        "1f415": "dog",
        "1f1eb-1f1f7": "flag-for-france",
        "1f34e": "redapple",
        "1f408": "cat-face",
    }
    assert "mirrored-dog" not in icon_set.aliases  # a flipped alias draws something else
    assert icon_set.svg("cat").startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8">')


def test_an_icon_two_entities_claim_goes_to_the_one_it_names(tmp_path):
    icon_set = _icon_set(tmp_path, ["mouse"], {}, flags=[])
    own = _entity("1f401", "mouse", "animals")
    other = _entity("1f42d", "mouse face", "animals", unicode_name="mouse")  # claims it by its Unicode name
    assert icon_set.index([other, own]) == {"1f401": "mouse"}
    # with no entity named by it exactly, nobody gets it
    assert icon_set.index([other, _entity("1f400", "rat", "animals", unicode_name="mouse")]) == {}


def test_data_build_runs_the_repository_script():
    assert cli.SUITE_BUILDER == SCRIPT


def test_data_build_says_how_to_get_the_builder_where_it_is_missing(monkeypatch, tmp_path):
    """An installed package has no scripts/: the command says where the builder is, in one line."""
    monkeypatch.setattr(cli, "SUITE_BUILDER", tmp_path / "scripts" / "suite_build.py")
    result = CliRunner().invoke(cli.app, ["data", "build"], env={"COLUMNS": "400"})
    assert result.exit_code == 2
    assert "scripts/suite_build.py in the taskvec repository" in result.output


def test_the_builders_render_job_can_be_handed_to_worker_processes():
    """``taskvec data build`` loaded the builder with runpy, whose functions cannot be pickled for
    the two render workers: every build failed with PicklingError."""
    import pickle

    builder = cli._suite_builder()
    assert pickle.loads(pickle.dumps(builder._render_job)) is builder._render_job


def test_a_failed_build_leaves_the_suite_it_was_to_replace(tmp_path):
    """The build deleted the shipped images before rendering, so a failure left no suite."""
    suite = tmp_path / "suite"
    for part in ("images/noto/a.webp", "recognition/noto.webp", "LICENSES/x", "manifest.json", "README.md"):
        (suite / part).parent.mkdir(parents=True, exist_ok=True)
        (suite / part).write_text("old")

    def failing(staging: Path):
        (staging / "images").mkdir()
        raise RuntimeError("a render worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        suite_build.replace_suite(suite, failing)
    assert (suite / "images" / "noto" / "a.webp").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suite"]  # no staging folder left

    def rendering(staging: Path):
        for part in ("images/noto/b.webp", "recognition/noto.webp", "LICENSES/y", "manifest.json"):
            (staging / part).parent.mkdir(parents=True, exist_ok=True)
            (staging / part).write_text("new")
        return {"format": 1}

    assert suite_build.replace_suite(suite, rendering) == {"format": 1}
    assert not (suite / "images" / "noto" / "a.webp").exists()
    assert (suite / "images" / "noto" / "b.webp").read_text() == "new"
    assert (suite / "manifest.json").read_text() == "new" and (suite / "README.md").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["suite"]
