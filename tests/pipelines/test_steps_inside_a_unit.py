"""A unit takes minutes on a CPU: its steps are told as they start, so the screen shows which."""

from __future__ import annotations

import torch
from helpers.reliability import TINY, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts, run_unit, task_vector_for
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


def test_each_step_counts_its_work_as_it_goes(tmp_path):
    """After each step is told, how far it is: from 0 to the step's own total (prompts, sweep
    rows, answers), with counts between them where the work takes several batches."""
    task = load_task_file(write_tiny_task(tmp_path))
    # a budget of about two prompts a batch: extraction and xBase answers take several
    options = {**TINY, "layers": None, "tasks": [task.name], "memory_budget_mb": 1.0}
    config = ExperimentConfig.create(**options)
    adapter = tiny_llm("llama", layers=3)
    told: list[tuple] = []
    unit, vector = run_unit(
        adapter,
        task,
        1,
        config,
        on_step=lambda _index, _count, name: told.append(name),
        on_progress=lambda done, total: told.append((done, total)),
    )
    counts: dict[str, list[tuple[int, int]]] = {}
    for entry in told:
        if isinstance(entry, str):
            counts[entry] = []
        else:
            counts[next(reversed(counts))].append(entry)
    val, test, layers = len(task.val), len(task.test), adapter.num_layers
    totals = {
        "task vector": val,  # one extraction prompt per validation item
        "layer sweep (val)": val * layers,
        "layer sweep (test)": test * layers,
        "xBase answers": test,
        "No Context answers": test,
    }
    assert {name: {t for _, t in seen} for name, seen in counts.items()} == {
        n: {t} for n, t in totals.items()
    }
    for seen in counts.values():
        done = [d for d, _ in seen]
        assert done[0] == 0 and done == sorted(done) and done[-1] == seen[0][1]
    assert any(0 < d < t for d, t in counts["task vector"])
    assert any(0 < d < t for d, t in counts["xBase answers"])
    # listening changes nothing
    quiet_unit, quiet_vector = run_unit(adapter, task, 1, config)
    assert unit == quiet_unit and torch.equal(vector.vectors, quiet_vector.vectors)


def test_an_ensemble_vector_counts_its_icl_prompts_then_its_instruction(tmp_path):
    task = load_task_file(write_tiny_task(tmp_path))
    config = ExperimentConfig.create(
        **{**TINY, "tasks": [task.name], "spec": "ensemble", "memory_budget_mb": 1.0}
    )
    told: list[tuple[int, int]] = []
    task_vector_for(
        tiny_llm("llama", layers=3), UnitPrompts(task, config, 1), None, lambda *n: told.append(n)
    )
    total = len(task.val) + 1
    assert told[-2:] == [(len(task.val), total), (total, total)] and {t for _, t in told} == {total}
