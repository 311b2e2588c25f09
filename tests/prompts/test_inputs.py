"""Pictures as prompt inputs: a file is decoded once while it is unchanged, and a picture's content
digest (what shared work and the image encodings are keyed by) follows its pixels."""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest
from PIL import Image

from taskvec.errors import ImageError
from taskvec.models.shared_work import prompts_digest
from taskvec.prompts import inputs
from taskvec.prompts.inputs import image_digest, open_image
from taskvec.storage.lru import LruCache


def save(path, colour, size=(8, 8)) -> None:
    Image.new("RGB", size, colour).save(path)


def test_an_unchanged_file_gives_the_same_decoded_picture(tmp_path):
    path = tmp_path / "red.png"
    save(path, (255, 0, 0))
    first = open_image(path)
    assert open_image(path) is first
    assert np.asarray(first)[0, 0].tolist() == [255, 0, 0]


def test_a_rewritten_file_is_decoded_again(tmp_path):
    path = tmp_path / "picture.png"
    save(path, (255, 0, 0))
    before = open_image(path)
    save(path, (0, 0, 255))  # same size on disk, new pixels
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = open_image(path)
    assert after is not before
    assert np.asarray(after)[0, 0].tolist() == [0, 0, 255]


def test_a_file_removed_after_it_was_read_is_refused(tmp_path):
    path = tmp_path / "gone.png"
    save(path, (0, 255, 0))
    open_image(path)
    path.unlink()
    with pytest.raises(ImageError, match="image file not found"):
        open_image(path)


def test_the_decoded_pictures_stay_within_their_byte_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "_DECODED", LruCache(2 * 8 * 8 * 3, inputs._size))  # two 8x8 RGB pictures
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        save(path, (i, i, i))
    first = open_image(paths[0])
    assert open_image(paths[0]) is first
    open_image(paths[1])
    open_image(paths[2])  # over budget: the least recently used, the first, leaves
    assert open_image(paths[0]) is not first
    assert open_image(paths[2]) is open_image(paths[2])


def test_image_digest_follows_the_pixels_not_the_object():
    red, also_red = Image.new("RGB", (4, 4), (255, 0, 0)), Image.new("RGB", (4, 4), (255, 0, 0))
    blue = Image.new("RGB", (4, 4), (0, 0, 255))
    assert image_digest(red) == image_digest(also_red) == image_digest(red)
    assert image_digest(red) != image_digest(blue)
    assert image_digest(red) != image_digest(Image.new("RGB", (2, 8), (255, 0, 0)))  # same bytes, shape
    assert image_digest(red) != image_digest(red.convert("RGBA"))
    assert prompts_digest([["Q:", red, "\nA:"]]) == prompts_digest([["Q:", also_red, "\nA:"]])
    assert prompts_digest([["Q:", red, "\nA:"]]) != prompts_digest([["Q:", blue, "\nA:"]])


def test_a_picture_changed_in_place_gets_its_new_digest():
    picture = Image.new("RGB", (4, 4), (255, 0, 0))
    before = image_digest(picture)
    picture.paste((0, 0, 255), (0, 0, 2, 2))
    assert image_digest(picture) != before


def test_a_decoded_pictures_digest_is_taken_once_and_leaves_with_it(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "_DECODED", LruCache(8 * 8 * 3, inputs._size))  # one 8x8 RGB picture
    path, other = tmp_path / "picture.png", tmp_path / "other.png"
    save(path, (1, 2, 3))
    save(other, (4, 5, 6))
    hash_pixels, hashed = inputs._hash_pixels, []
    monkeypatch.setattr(inputs, "_hash_pixels", lambda image: hashed.append(image) or hash_pixels(image))
    picture = open_image(path)
    assert image_digest(picture) == image_digest(picture) == hash_pixels(Image.new("RGB", (8, 8), (1, 2, 3)))
    assert hashed == [picture]  # once, when it was decoded
    hashed.clear()
    identity = id(picture)
    open_image(other)  # the one-picture cache lets go of the first
    del picture
    gc.collect()
    assert identity not in inputs._DIGESTS


def test_an_animated_picture_is_refused_and_a_one_bit_one_shown_exactly(tmp_path):
    """A GIF's first frame is not necessarily the picture meant: refused, naming the frames. A
    1-bit picture (a scan, a line drawing) converts exactly: black and white."""
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match=r"moving.gif is animated \(2 frames\)"):
        open_image(tmp_path / "moving.gif")
    Image.new("RGB", (8, 8), "red").save(tmp_path / "still.gif")
    assert open_image(tmp_path / "still.gif").mode == "RGB"
    bits = Image.new("1", (4, 1))
    bits.putpixel((1, 0), 1)
    bits.save(tmp_path / "bits.png")
    shown = np.asarray(open_image(tmp_path / "bits.png"))
    assert shown[0, 0].tolist() == [0, 0, 0] and shown[0, 1].tolist() == [255, 255, 255]
    Image.new("CMYK", (4, 4)).save(tmp_path / "print.jpg")
    with pytest.raises(ImageError, match="has mode 'CMYK'"):
        open_image(tmp_path / "print.jpg")
