"""The six built-in tasks as the image suite sees them: every item has text, a label, an entity
and a picture in each style that draws it; splits are the ones the build script makes; and
the protocol's prompts never show a test query's own entity among its demonstrations."""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts
from taskvec.tasks import images as im
from taskvec.tasks.registry import BUILTIN_TASKS, load_task

REPO = Path(__file__).resolve().parents[2]

# Table 1 of Luo, Darrell & Bar (2024), "Task Vectors are Cross-Modal".
PAPER_INSTRUCTIONS = {
    "country_capital": "The capital city of the country:",
    "country_currency": "The last word of the official currency of the country:",
    "animal_latin": "The scientific name of the animal's species in latin:",
    "animal_young": "The term for the baby of the animal:",
    "food_color": "The color of the food:",
    "food_flavor": "The flavor descriptor of the food:",
}


@cache
def build_script() -> ModuleType:
    """scripts/build_text_tasks.py, imported by path (it is a script, not a package module)."""
    path = REPO / "scripts" / "build_text_tasks.py"
    spec = importlib.util.spec_from_file_location("build_text_tasks", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_text_tasks", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", BUILTIN_TASKS)
def test_instruction_is_the_papers_wording(name):
    assert load_task(name).instruction == PAPER_INSTRUCTIONS[name]


@pytest.mark.parametrize("name", BUILTIN_TASKS)
def test_every_item_has_text_label_entity_and_an_image_in_each_of_its_styles(name):
    task = load_task(name)
    entities = [item.entity for item in (*task.val, *task.test)]
    assert len(set(entities)) == len(entities), "two items share a picture"
    for item in (*task.val, *task.test):
        assert item.input.strip() and item.label.strip()
        assert all(a.strip() and a != item.label for a in item.aliases), item
        info = im.entity_info(item.entity)
        assert info["domain"] == task.domain, item
        styles = im.styles_for(item.entity)
        assert im.HELD_OUT_STYLE in styles and len(styles) >= 3, (item, styles)
        for style in styles:
            with Image.open(im.image_path(item.entity, style)) as picture:
                picture.load()  # decodes the whole file: a truncated one fails here
                assert picture.size == im.TASK_IMAGE_SIZE, (item, style)


def test_loader_yields_the_tasks_own_items_with_pil_images():
    task = load_task("country_capital")
    pairs = list(im.task_images(task, "test", "twemoji"))
    assert [item for item, _ in pairs] == list(task.test)
    assert all(item is original for (item, _), original in zip(pairs, task.test, strict=True))
    item, picture = pairs[0]
    assert picture.mode == "RGB" and picture.size == im.TASK_IMAGE_SIZE
    expected = np.asarray(im.load_image(item.entity, "twemoji"))
    assert np.array_equal(np.asarray(picture), expected)
    # by name works too, and gives the same items
    assert [i.id for i, _ in im.task_images("food_color", "val", "fluent")] == [
        i.id for i in load_task("food_color").val
    ]


def test_loader_refuses_a_style_without_the_picture_unless_asked_to_skip():
    assert "fluent" not in im.task_styles("country_capital")  # Fluent draws no national flags
    assert {"noto", "twemoji", "flag_icons", "openmoji"} <= set(im.task_styles("country_capital"))
    with pytest.raises(im.SuiteImageNotFound, match="fluent"):
        next(im.task_images("country_capital", "val", "fluent"))
    assert list(im.task_images("country_capital", "val", "fluent", skip_missing=True)) == []


@pytest.mark.parametrize("name", BUILTIN_TASKS)
def test_every_task_has_at_least_three_complete_styles(name):
    styles = im.task_styles(name)
    assert im.HELD_OUT_STYLE in styles
    assert len([s for s in styles if s != im.HELD_OUT_STYLE]) >= 2, styles


# ------------------------------------------------------------------------------------ splits


def test_country_splits_are_the_build_scripts_seeded_split_of_its_chosen_countries():
    script = build_script()
    dropped = {code for group in script.NEAR_IDENTICAL_FLAGS for code in group[1:]}
    eligible = [c for c in script.WELL_KNOWN_ORDER if c not in dropped and c not in script.EXCLUDED_COUNTRIES]
    chosen = eligible[: script.N_VAL_COUNTRIES + script.N_TEST_COUNTRIES]
    val, test = script.split_items([{"id": c} for c in chosen], script.N_VAL_COUNTRIES)
    for name in ("country_capital", "country_currency"):
        task = load_task(name)
        assert [i.id for i in task.val] == [r["id"] for r in val]
        assert [i.id for i in task.test] == [r["id"] for r in test]
        assert (len(task.val), len(task.test)) == (30, 100)
        assert task.extra["near_identical_groups"] == script.NEAR_IDENTICAL_FLAGS


@pytest.mark.parametrize("name", ["animal_latin", "animal_young", "food_color", "food_flavor"])
def test_curated_splits_are_the_build_scripts_stratified_split(name):
    script = build_script()
    task = load_task(name)
    rows = [{"id": i.id, "output": i.label} for i in (*task.val, *task.test)]
    val, test = script.stratified_split(rows, script.n_val_for(len(rows)))
    assert [i.id for i in task.val] == [r["id"] for r in val]
    assert [i.id for i in task.test] == [r["id"] for r in test]
    again = script.stratified_split(list(reversed(rows)), script.n_val_for(len(rows)))
    assert (val, test) == again  # the input order does not matter, only the seed


def test_the_image_suite_page_states_the_split_sizes():
    readme = (REPO / "docs" / "image-suite.md").read_text(encoding="utf-8")
    for name in BUILTIN_TASKS:
        task = load_task(name)
        row = re.search(rf"^\|\s*`{name}`\s*\|[^|]*\|\s*(\d+)\s*\|\s*(\d+)\s*\|", readme, re.MULTILINE)
        assert row, f"docs/image-suite.md has no row for {name}"
        assert (int(row[1]), int(row[2])) == (len(task.val), len(task.test)), name


# ------------------------------------------------------------------- demonstrations vs query


def _group_of(task) -> dict[str, int]:
    groups = task.extra.get("near_identical_groups", [])
    return {code: k for k, group in enumerate(groups) for code in group}


@pytest.mark.parametrize("name", BUILTIN_TASKS)
def test_no_query_sees_its_own_entity_among_its_demonstrations(name):
    """On the protocol's real prompts (seeds 1-3): test queries draw demonstrations from the val
    split only, so neither the query's entity nor a near-identical flag of it is ever shown."""
    task = load_task(name)
    group = _group_of(task)
    test_entities = {i.entity for i in task.test}
    val_ids = {i.id for i in task.val}
    config = ExperimentConfig(tasks=[name], spec="text-icl", query="text")
    for seed in (1, 2, 3):
        prompts = UnitPrompts(task, config, seed)
        for query, demos, prompt in zip(task.test, prompts.test_demos, prompts.test_base, strict=True):
            assert len(demos) == config.n_examples and {d.id for d in demos} <= val_ids
            assert query.entity not in {d.entity for d in demos}
            assert not test_entities & {d.entity for d in demos}
            if query.id in group:
                assert group[query.id] not in {group.get(d.id) for d in demos}, (query, demos)
            text = "".join(prompt)
            assert text.endswith(f"Q:{query.input}\nA:")
            assert text.count(f"Q:{query.input}\n") == 1  # the query is never also a demonstration
        for query, demos in zip(task.val, prompts.val_demos, strict=True):
            assert query.entity not in {d.entity for d in demos}


def test_image_prompts_show_the_demonstrations_pictures_and_the_querys_own_picture_last():
    """Image-ICL prompts of the protocol carry the real suite pictures: N demonstration images
    in order, then the query's, and no demonstration picture equals the query's."""
    task = load_task("country_capital")
    config = ExperimentConfig(tasks=[task.name], spec="image-icl", query="image", style="twemoji")
    prompts = UnitPrompts(task, config, seed=1)
    for query, demos, prompt in list(zip(task.test, prompts.test_demos, prompts.test_base, strict=True))[:20]:
        pictures = [np.asarray(s) for s in prompt if isinstance(s, Image.Image)]
        assert len(pictures) == config.n_examples + 1
        expected = [np.asarray(im.load_image(d.entity, "twemoji")) for d in (*demos, query)]
        assert all(np.array_equal(a, b) for a, b in zip(pictures, expected, strict=True))
        assert not any(np.array_equal(p, pictures[-1]) for p in pictures[:-1])
        texts = [s for s in prompt if isinstance(s, str)]
        assert [t.split("\nA:")[1].split("\n\n")[0] for t in texts[1:-1]] == [d.label for d in demos]
