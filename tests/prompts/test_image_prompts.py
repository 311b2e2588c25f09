"""Image-ICL and mixed text/image prompts built from real suite pictures with ``PromptTemplate``:
segments in reading order, each picture where its example or the query stands, text runs merged,
and the prompt ending at the delimiter."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from taskvec.prompts.inputs import item_input
from taskvec.prompts.template import PAPER, SPACED, Prompt
from taskvec.tasks import images as im
from taskvec.tasks.registry import load_task


@pytest.fixture(scope="module")
def items():
    task = load_task("country_capital")
    return task.val[:3], task.test[0]


def pictures(prompt: Prompt) -> list[Image.Image]:
    return [s for s in prompt if isinstance(s, Image.Image)]


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def test_image_icl_alternates_pictures_and_answers(items):
    demos, query = items
    shown = [(item_input(d, "image", "noto"), d.label) for d in demos]
    prompt = PAPER.icl(shown, item_input(query, "image", "noto"))
    a, b, c = (d.label for d in demos)
    assert [s if isinstance(s, str) else "<image>" for s in prompt] == [
        "Q:",
        "<image>",
        f"\nA:{a}\n\nQ:",
        "<image>",
        f"\nA:{b}\n\nQ:",
        "<image>",
        f"\nA:{c}\n\nQ:",
        "<image>",
        "\nA:",
    ]
    expected = [im.load_image(x.entity, "noto") for x in (*demos, query)]
    assert all(same_pixels(p, e) for p, e in zip(pictures(prompt), expected, strict=True))
    assert all(p.mode == "RGB" and p.size == im.TASK_IMAGE_SIZE for p in pictures(prompt))


def test_text_examples_with_an_image_query(items):
    demos, query = items
    prompt = PAPER.icl([(d.input, d.label) for d in demos], item_input(query, "image", "twemoji"))
    text = "".join(f"Q:{d.input}\nA:{d.label}\n\n" for d in demos)
    assert prompt[0] == text + "Q:"  # all the text examples in one run
    assert same_pixels(prompt[1], im.load_image(query.entity, "twemoji"))
    assert prompt[2:] == ("\nA:",)
    assert len(pictures(prompt)) == 1


def test_image_examples_with_a_text_query(items):
    demos, query = items
    shown = [(item_input(d, "image", "openmoji"), d.label) for d in demos]
    prompt = SPACED.icl(shown, query.input)
    assert len(prompt) == 2 * len(demos) + 1
    assert prompt[0] == "Q: " and isinstance(prompt[1], Image.Image)
    assert prompt[-1] == f"\nA: {demos[-1].label}\n\nQ: {query.input}\nA:"
    shown_pictures = pictures(prompt)
    assert len(shown_pictures) == len(demos)
    for picture, demo in zip(shown_pictures, demos, strict=True):
        assert same_pixels(picture, im.load_image(demo.entity, "openmoji"))


def test_every_prompt_kind_ends_at_the_delimiter(items):
    demos, query = items
    picture = item_input(query, "image", "flag_icons")
    for prompt in (
        PAPER.query(picture),
        PAPER.icl([(item_input(d, "image", "flag_icons"), d.label) for d in demos], picture),
        PAPER.icl([(d.input, d.label) for d in demos], picture),
        PAPER.icl([(item_input(d, "image", "flag_icons"), d.label) for d in demos], query.input),
        PAPER.instructed(load_task("country_capital").instruction, picture),
    ):
        assert isinstance(prompt[-1], str) and prompt[-1].endswith(PAPER.delimiter)
        assert all(s for s in prompt)  # no empty text segment
        kinds = [isinstance(s, str) for s in prompt]
        assert not any(a and b for a, b in zip(kinds, kinds[1:], strict=False)), "text runs are merged"


def test_a_style_without_the_picture_names_the_item():
    from taskvec.errors import ImageError

    query = load_task("country_capital").test[0]
    with pytest.raises(ImageError, match=query.id):
        item_input(query, "image", "fluent")
