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
