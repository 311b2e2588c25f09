"""A val split too small for the demonstrations: an analysis said so only as a ValueError deep in
sampling, and an instruction run or analysis, which shows no demonstration, failed the same way."""

from __future__ import annotations

import pytest
from helpers.reliability import write_tiny_task

from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts
from taskvec.pipelines import analyze as analyze_module
from taskvec.pipelines.analyze import run_analysis
from taskvec.tasks.registry import load_task


def test_an_analysis_refuses_such_a_task_in_one_line_before_loading(tmp_path, monkeypatch):
    task = write_tiny_task(tmp_path / "data", val=3)

    def load(*_args, **_kwargs):
        raise AssertionError("the model loaded")

    monkeypatch.setattr(analyze_module, "load_model", load)
    with pytest.raises(ConfigError, match="val split has 3 items, too few for 5 demonstrations"):
        run_analysis(tasks=[str(task)], specs=["text-icl"], out=tmp_path / "analysis")
    with pytest.raises(AssertionError, match="the model loaded"):  # an instruction needs none
        run_analysis(tasks=[str(task)], specs=["instruction"], out=tmp_path / "instruction")


def test_an_instruction_unit_of_such_a_task_draws_no_demonstration(tmp_path):
    task = load_task(str(write_tiny_task(tmp_path / "data", val=3)))
    config = ExperimentConfig.create(tasks=[task.source], spec="instruction", seeds=[1])
    prompts = UnitPrompts(task, config, 1)
    assert prompts.val_demos == [[]] * 3 and prompts.test_demos == [[]] * 3
    assert prompts.test_queries and prompts.instruction  # what the unit shows is there


def test_where_the_split_suffices_an_instruction_unit_records_the_icl_units_draw(tmp_path):
    """Units of a split large enough are as before: an instruction unit records the
    demonstrations an ICL unit of its seed draws."""
    task = load_task(str(write_tiny_task(tmp_path / "data", val=7)))
    instruction = UnitPrompts(task, ExperimentConfig.create(tasks=[task.source], spec="instruction"), 1)
    icl = UnitPrompts(task, ExperimentConfig.create(tasks=[task.source]), 1)
    assert instruction.test_demos == icl.test_demos and len(icl.test_demos[0]) == 5
