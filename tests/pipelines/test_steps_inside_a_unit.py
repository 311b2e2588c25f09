"""A unit takes minutes on a CPU: its steps are told as they start, so the screen shows which."""

from __future__ import annotations

from helpers.reliability import TINY, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.evaluation.protocol import ExperimentConfig, run_unit
from taskvec.tasks.task import load_task_file


def _steps(tmp_path, test_layers: str) -> list[tuple[int, int, str]]:
    task = load_task_file(write_tiny_task(tmp_path / test_layers))
    options = {**TINY, "layers": [1], "tasks": [task.name], "test_layers": test_layers}
    config = ExperimentConfig.create(**options)
    told: list[tuple[int, int, str]] = []
    run_unit(tiny_llm("llama", layers=3), task, 1, config, on_step=lambda *step: told.append(step))
    return told


def test_every_step_of_a_unit_is_told_in_order(tmp_path):
    assert _steps(tmp_path, "all") == [
        (0, 5, "task vector"),
        (1, 5, "layer sweep (val)"),
        (2, 5, "layer sweep (test)"),
        (3, 5, "xBase answers"),
        (4, 5, "No Context answers"),
    ]
    assert [name for _, _, name in _steps(tmp_path, "chosen")] == [
        "task vector",
        "layer sweep (val)",
        "xBase answers",
        "No Context answers",
    ]
