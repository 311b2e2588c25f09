"""``task_images`` on a task whose items bring their own picture files: each picture as a run
shows it (its own size, transparent pixels on white), whatever ``style`` says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from taskvec.tasks import images as im
from taskvec.tasks.task import load_task_file


def _task_with_pictures(folder):
    """Items with their own PNGs: transparent except a red square in the corner."""
    items = []
    for k in range(4):
        picture = Image.new("RGBA", (30 + k, 20), (0, 0, 0, 0))
        picture.paste((200, 0, 0, 255), (0, 0, 5, 5))
        picture.save(folder / f"p{k}.png")
        items.append({"id": f"i{k}", "input": f"thing {k}", "output": f"label {k}", "image": f"p{k}.png"})
    path = folder / "own.json"
    path.write_text(
        json.dumps({"name": "own", "instruction": "The label:", "val": items[:3], "test": items[3:]})
    )
    return load_task_file(path)


def test_own_pictures_keep_their_size_go_on_white_and_ignore_the_style(tmp_path):
    task = _task_with_pictures(tmp_path)
    (item, picture), *_ = im.task_images(task, "val", style="twemoji")
    assert item.id == "i0" and picture.mode == "RGB" and picture.size == (30, 20)
    pixels = np.asarray(picture)
    assert tuple(pixels[10, 20]) == (255, 255, 255)  # transparent -> white, not black
    assert tuple(pixels[2, 2]) == (200, 0, 0)
    default = [np.asarray(p) for _, p in im.task_images(task, "val")]
    for style in ("noto", "openmoji"):  # the style is the suite's: an own picture has none
        again = [np.asarray(p) for _, p in im.task_images(task, "val", style=style)]
        assert all(np.array_equal(a, b) for a, b in zip(again, default, strict=True))


def test_task_images_shows_the_picture_a_run_shows(tmp_path):
    from taskvec.prompts.inputs import item_input

    task = _task_with_pictures(tmp_path)
    for item, picture in im.task_images(task, "test"):
        assert np.array_equal(np.asarray(picture), np.asarray(item_input(item, "image", "noto")))


def test_every_style_has_a_tasks_own_pictures(tmp_path):
    assert im.task_styles(_task_with_pictures(tmp_path)) == list(im.STYLES)


def test_a_picture_is_shown_upright_and_a_transparent_colour_key_white(tmp_path):
    """A phone's JPEG stored sideways with an EXIF orientation was shown sideways, and an RGB PNG
    whose transparency is one colour (``tRNS``, as optimisers write) was shown black there."""
    from taskvec.prompts.inputs import open_image

    sideways = Image.new("RGB", (20, 30), (0, 0, 200))
    sideways.paste((200, 0, 0), (0, 0, 20, 5))  # a red band along the stored top edge
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    sideways.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = open_image(tmp_path / "phone.jpg")
    assert shown.size == (30, 20)  # as a viewer shows it
    red, green, blue = shown.getpixel((27, 10))  # the band is now along the right edge
    assert red > 150 and blue < 100

    keyed = Image.new("RGB", (8, 8), (0, 0, 0))
    keyed.paste((200, 0, 0), (0, 0, 4, 8))
    keyed.save(tmp_path / "keyed.png", transparency=(0, 0, 0))
    shown = open_image(tmp_path / "keyed.png")
    assert shown.getpixel((6, 4)) == (255, 255, 255) and shown.getpixel((1, 4)) == (200, 0, 0)


def test_a_task_moved_with_its_pictures_keeps_its_fingerprint(tmp_path):
    """A picture's absolute place was part of the fingerprint: a project moved or copied elsewhere
    was another task, its runs refused as "another run" and verify said "the task data changed".
    (Its bytes count in the run that shows it: ``check_images``.)"""
    (tmp_path / "here").mkdir()
    first = _task_with_pictures(tmp_path / "here")
    moved = shutil.copytree(tmp_path / "here", tmp_path / "elsewhere ü")
    again = load_task_file(moved / "own.json")
    assert again.val[0].entity != first.val[0].entity
    assert again.fingerprint() == first.fingerprint()
    record = json.loads((moved / "own.json").read_text())
    (moved / "p0.png").rename(moved / "other.png")
    record["val"][0]["image"] = "other.png"
    (moved / "own.json").write_text(json.dumps(record))
    assert load_task_file(moved / "own.json").fingerprint() != first.fingerprint()  # another picture


def test_the_same_picture_under_two_items_is_refused(tmp_path):
    """As the same input twice: a query's picture could be shown as a demonstration with its own
    answer. A copy under another name is the same picture."""
    from taskvec.errors import ImageError
    from taskvec.pipelines.evaluate import check_images

    task = _task_with_pictures(tmp_path)
    first, second = task.val[0], task.val[1]
    Path(second.entity).write_bytes(Path(first.entity).read_bytes())
    with pytest.raises(ImageError, match=f"items {first.id!r} and {second.id!r} show the same picture"):
        check_images([load_task_file(task.source)], "noto")
