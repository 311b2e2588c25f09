"""A picture is named as a researcher would name it: the emoji itself, its code points, or its
CLDR short name (``"pizza"`` was read as the five code points p-i-z-z-a)."""

from __future__ import annotations

import json

import pytest

from taskvec.tasks.images import load_image, name_of, normalise_entity
from taskvec.tasks.task import load_task_file


@pytest.mark.parametrize("given", ["pizza", "Pizza", "🍕", "1F355", "U+1F355"])
def test_every_way_of_naming_the_pizza_is_the_pizza(given):
    assert normalise_entity(given) == "1f355"
    assert name_of(given) == "pizza"


def test_a_flag_by_its_place_name():
    assert normalise_entity("France") == normalise_entity("🇫🇷") == "1f1eb-1f1f7"


def test_a_task_file_item_naming_its_entity_gets_that_picture(tmp_path):
    items = [
        {"id": "a", "input": "pizza", "output": "red", "entity": "pizza"},
        {"id": "b", "input": "France", "output": "Paris", "entity": "France"},
    ]
    record = {"name": "food", "instruction": "The colour of the food:", "val": items[:1], "test": items[1:]}
    path = tmp_path / "food.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    task = load_task_file(path)
    assert normalise_entity(task.val[0].entity) == "1f355"
    assert normalise_entity(task.test[0].entity) == "1f1eb-1f1f7"
    assert load_image(task.val[0].entity, "noto").size == (224, 224)
