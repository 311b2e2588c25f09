"""Every task item can be shown as a picture in at least one training style and the held-out one."""

import pytest

from taskvec.tasks.images import HELD_OUT_STYLE, styles_for
from taskvec.tasks.registry import BUILTIN_TASKS, load_task


@pytest.mark.parametrize("name", BUILTIN_TASKS)
def test_every_task_item_has_images(name):
    for item in (*load_task(name).val, *load_task(name).test):
        styles = styles_for(item.entity)
        assert HELD_OUT_STYLE in styles, item
        assert "noto" in styles or "twemoji" in styles, item
