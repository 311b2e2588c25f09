"""Two items of one input text, told apart by their pictures, are one item in a run that shows
text: a demonstration would give the query its own answer."""

from __future__ import annotations

import pytest

from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig, check_task_fits
from taskvec.tasks.task import Item, Task


def _task() -> Task:
    val = [Item(f"v{i}", f"thing {i}", f"label {i}", entity=f"v{i}.png") for i in range(6)]
    val[0] = Item("v0", "pink square", "pink", entity="square.png")
    test = [Item("t0", "Pink square", "pink", entity="circle.png"), Item("t1", "other", "x", entity="o.png")]
    return Task(name="twins", instruction="The colour:", val=val, test=test)


@pytest.mark.parametrize(
    "spec, query, refused",
    [
        ("text-icl", "text", True),
        ("text-icl", "image", True),  # the demonstration names the query's own entity with its answer
        ("image-icl", "text", True),
        ("ensemble", "text", True),
        ("image-icl", "image", False),  # pictures on both sides: the two differ
        ("instruction", "text", False),  # no demonstrations
    ],
)
def test_twin_inputs_are_refused_where_the_run_shows_them_as_text(spec, query, refused):
    config = ExperimentConfig.create(spec=spec, query=query, n_examples=3)
    if not refused:
        check_task_fits(_task(), config)
        return
    with pytest.raises(
        ConfigError, match=r"items 'v0' \(val\) and 't0' \(test\) have the same input 'Pink square'"
    ):
        check_task_fits(_task(), config)
