"""``observing_steps``: a caller is told as each protocol step starts and ends (how
``bench/table.py`` times them), and the unit it observes is the unit it would get without."""

from __future__ import annotations

import pytest
from helpers.families.llava import build_llava
from helpers.reliability import write_tiny_task

from taskvec.evaluation.protocol import ExperimentConfig, observing_steps, patched_answers, run_unit
from taskvec.tasks.registry import load_task

STEPS = ["task vector", "layer sweep (val)", "layer sweep (test)", "xBase answers", "No Context answers"]


@pytest.fixture(scope="module")
def unit_inputs(tmp_path_factory):
    task = load_task(write_tiny_task(tmp_path_factory.mktemp("task"), test=2))
    config = ExperimentConfig.create(
        model="tiny-llava", tasks=[task.name], seeds=[1], layers=[1], answer_tokens=2, test_layers="all"
    )
    return build_llava(), task, config


def test_every_step_of_a_unit_and_the_chosen_layers_answers_start_and_end_in_order(unit_inputs):
    adapter, task, config = unit_inputs
    told = []
    with observing_steps(lambda moment, step: told.append((moment, step))):
        unit, vector = run_unit(adapter, task, 1, config)
        patched_answers(adapter, task, config, {1: vector}, 1)
    expected = [(moment, step) for step in [*STEPS, "xPatch answers"] for moment in ("start", "end")]
    assert told == expected
    assert run_unit(adapter, task, 1, config)[0] == unit  # observed or not, the same unit


def test_nothing_is_told_after_a_block_that_ended_in_an_error(unit_inputs):
    adapter, task, config = unit_inputs
    told = []

    def observer(moment, step):
        told.append((moment, step))
        if step == "layer sweep (val)" and moment == "start":
            raise KeyboardInterrupt  # as an interrupted run

    with pytest.raises(KeyboardInterrupt), observing_steps(observer):
        run_unit(adapter, task, 1, config)
    assert told[-1] == ("start", "layer sweep (val)")
    told.clear()
    run_unit(adapter, task, 1, config)
    assert told == []
