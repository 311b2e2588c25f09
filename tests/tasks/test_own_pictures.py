"""``task_images`` on a task whose items bring their own picture files: each picture as a run
shows it (its own size, transparent pixels on white), whatever ``style`` says."""

from __future__ import annotations

import json

import numpy as np
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
