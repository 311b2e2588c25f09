"""A task built in Python is saved as a task file that every command reads back as the same task;
runs refuse a ``Task`` object with the way to give it a file (they record, resume and verify their
tasks by file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from taskvec.errors import ConfigError, TaskFileError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.tasks.registry import load_task
from taskvec.tasks.task import Item, Task


def test_a_saved_task_reads_back_as_the_same_task(tmp_path):
    builtin = load_task("country_capital")  # suite entities and aliases
    picture = tmp_path / "pictures" / "red.png"
    picture.parent.mkdir()
    Image.new("RGB", (8, 8), "red").save(picture)
    own = Item("own", "Red square", "red", entity=str(picture))  # a picture file, by absolute path
    task = Task(
        name="mine",
        instruction="The capital city of the country:",
        val=builtin.val[:10],
        test=(*builtin.test[:5], own),
        domain="flags",
        description="built in Python",
    )
    path = task.save(tmp_path / "elsewhere" / "mine.json")
    back = load_task(path)
    assert back.fingerprint() == task.fingerprint()
    assert (back.val, back.test) == (task.val, task.test)
    assert (back.domain, back.description) == ("flags", "built in Python")
    assert any(item.aliases for item in back.val + back.test)


def test_a_picture_named_relative_to_the_working_directory_is_saved_by_its_place(tmp_path, monkeypatch):
    """A task file's picture paths are read relative to the file: a relative path written as it was
    given would name another file (or none) once the task file lies elsewhere."""
    monkeypatch.chdir(tmp_path)
    Path("pictures").mkdir()
    Image.new("RGB", (8, 8), "red").save("pictures/red.png")
    items = (Item("a", "Red", "red", entity="pictures/red.png"), Item("b", "Dog", "dog", entity="dog"))
    task = Task(name="own", instruction="The colour:", val=items[:1], test=items[1:])
    back = load_task(task.save(tmp_path / "elsewhere" / "own.json"))
    assert back.val[0].entity == str(tmp_path / "pictures" / "red.png")
    assert back.test[0].entity == "dog"  # a suite entity stays a name


def test_an_item_built_in_python_is_what_its_file_gives_back(tmp_path, monkeypatch):
    """A whole-number id, one alias given as a string, spaces around a label and a relative picture
    path: the task kept its fingerprint through save and load only if each is taken as the file
    gives it back, and a string alias had become its letters ('S', 't', ...), each a right answer."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8), "red").save("red.png")
    val = (Item(7, "Japan", " Tokyo ", aliases="Tōkyō"), Item("v1", "Peru", "Lima", entity="red.png"))
    task = Task(name="own", instruction="The capital:", val=val, test=(Item("t0", "Chile", "Santiago"),))
    assert task.val[0].id == "7" and task.val[0].answers == ("Tokyo", "Tōkyō")
    assert task.val[1].entity == str(tmp_path / "red.png")
    back = load_task(task.save(tmp_path / "elsewhere" / "own.json"))
    assert (back.val, back.test) == (task.val, task.test) and back.fingerprint() == task.fingerprint()


def test_a_task_a_file_could_not_hold_is_refused_and_nothing_is_written(tmp_path):
    blank = Task(name="blank", instruction="x", val=(Item("a", " ", "b"),), test=(Item("c", "d", "e"),))
    with pytest.raises(TaskFileError, match="val.0.input: .*blank"):
        blank.save(tmp_path / "blank.json")
    assert not list(tmp_path.iterdir())


def test_a_run_given_a_task_object_says_how_to_give_it_a_file():
    task = load_task("food_color")
    with pytest.raises(ConfigError, match=r"a Task object: .*task\.save\('my_task\.json'\)"):
        ExperimentConfig.create(tasks=[task])


@pytest.mark.parametrize("name", ["mine.csv", "mine.jsonl", "mine"])
def test_a_task_is_saved_only_under_a_name_that_reads_back_as_json(tmp_path, name):
    task = load_task("country_capital")
    with pytest.raises(TaskFileError, match=f"cannot be saved as {name}: .* must end in .json"):
        task.save(tmp_path / name)
    assert not (tmp_path / name).exists()
    assert load_task(task.save(tmp_path / "mine.JSON")).fingerprint() == task.fingerprint()
