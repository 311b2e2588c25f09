"""A run's default folder is named by the whole run, so the same run with a seed more, or read
under another layer selection, is another folder: the units it shares with a run folder beside
it (the same unit identity) are copied in, not computed again, and give the same answers."""

from __future__ import annotations

import pytest
from helpers.reliability import TINY, counted_units, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.evaluate import evaluate
from taskvec.vectors.task_vector import TaskVector

COLUMNS = ["task", "seed", "item", "method", "prediction"]


@pytest.fixture
def computed(monkeypatch):
    """The (task, seed) units computed, in order."""
    return counted_units(monkeypatch)


@pytest.fixture
def first(tmp_path, monkeypatch):
    """A run of seed 1 in its default folder under ``runs/``."""
    monkeypatch.chdir(tmp_path)
    options = {**TINY, "tasks": [str(write_tiny_task(tmp_path / "data"))], "layers": [1, 2]}
    adapter = tiny_llm("llama", layers=3)
    return options, adapter, _run(adapter, **options)


def _run(adapter, **options):
    """The run of ``options`` in its default folder."""
    return evaluate(ExperimentConfig.create(**options), adapter=adapter, show_progress=False)


def test_a_seed_more_computes_only_the_new_seeds_unit(first, computed):
    options, adapter, one = first
    two = _run(adapter, **{**options, "seeds": [1, 2]})
    assert two.folder.root != one.folder.root and computed == [("tiny_food", 2)]
    seed_one = two.predictions[two.predictions.seed == 1][COLUMNS].reset_index(drop=True)
    assert seed_one.equals(one.predictions[COLUMNS].reset_index(drop=True))
    # the copied vector is this folder's own, whole and of this run
    copied = TaskVector.load(two.folder.vector_path("tiny_food", "text-icl", 1), adapter, same_model=True)
    assert copied.meta.seed == 1


def test_another_layer_selection_computes_no_unit(first, computed):
    options, adapter, _ = first
    _run(adapter, **options, layer_selection="per-task")
    assert computed == []


def test_units_of_other_options_or_damaged_ones_are_computed(first, computed):
    options, adapter, one = first
    _run(adapter, **options, n_examples=4)
    assert computed == [("tiny_food", 1)]  # another run beside it: nothing of it is taken
    one.folder.vector_path("tiny_food", "text-icl", 1).with_suffix(".safetensors").write_bytes(b"damaged")
    _run(adapter, **options, layer_selection="per-task")
    assert computed == [("tiny_food", 1), ("tiny_food", 1)]


def test_a_folder_beside_it_that_cannot_be_read_is_left_alone(first, computed, monkeypatch):
    """A folder of another user's beside ``--out`` (not searchable) neither stops the run nor
    lends it anything."""
    from pathlib import Path

    options, adapter, one = first
    real_is_file = Path.is_file

    def is_file(path):
        if path.parent == one.folder.root:
            raise PermissionError(13, "Permission denied", str(path))
        return real_is_file(path)

    monkeypatch.setattr(Path, "is_file", is_file)
    _run(adapter, **options, layer_selection="per-task")
    assert computed == [("tiny_food", 1)]


def test_a_folder_given_by_out_computes_its_own_units(first, computed):
    """A second run of the same options in a folder of its own may be meant to compute again."""
    options, adapter, one = first
    config = ExperimentConfig.create(**options, layer_selection="per-task")
    evaluate(config, one.folder.root.parent / "second", adapter=adapter, show_progress=False)
    assert computed == [("tiny_food", 1)]
