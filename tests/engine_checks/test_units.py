"""What one (task, seed) unit holds: a run on a subset of layers patches each of those layers
with that layer's own vector, every accepted answer (aliases too) is in the first tokens strict
scoring reads, and test demonstrations come from the val split only."""

from __future__ import annotations

import pytest
from helpers.reliability import write_tiny_task
from helpers.tinyllm import tiny_text_lm

from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts, run_unit, task_vector_for
from taskvec.patching.patch import Patch, generate_ids
from taskvec.tasks.registry import load_task

#: a subset whose positions (0, 1) are not its layer numbers (1, 3)
SUBSET = [1, 3]


def _config(task, **options) -> ExperimentConfig:
    return ExperimentConfig.create(
        tasks=[task.name], seeds=[1], template="spaced", answer_tokens=1, test_layers="all", **options
    )


@pytest.fixture(scope="module")
def model():
    """A 4-layer tiny LM whose first answer token depends on which layer's vector is patched in
    (the plain tiny Llama answers one token whatever is patched)."""
    return tiny_text_lm("llama-gqa")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """Seven val items of food_color (one, grapes, with the alias violet) and three test items."""
    return load_task(write_tiny_task(tmp_path_factory.mktemp("task")))


@pytest.fixture(scope="module")
def full_unit(model, task):
    return run_unit(model, task, 1, _config(task))[0]


def test_a_layer_subset_run_answers_as_the_full_run_does_at_those_layers(model, task, full_unit):
    """A run restricted to some layers must patch each with that layer's vector: its xPatch
    answers per (item, layer) are the full run's at the same layers. Patching the subset's
    positions' vectors instead (layers 0 and 1 for [1, 3]) changes the answers."""
    subset_unit = run_unit(model, task, 1, _config(task, layers=SUBSET))[0]
    assert full_unit["layers"] == list(range(model.num_layers))
    assert subset_unit["layers"] == subset_unit["test_layers"] == SUBSET
    for split in ("val", "test"):
        for full_row, subset_row in zip(full_unit[split], subset_unit[split], strict=True):
            assert subset_row["xpatch"] == [full_row["xpatch"][layer] for layer in SUBSET]

    # the check can see a mix-up: another layer's vector gives other answers on this model
    prompts = UnitPrompts(task, _config(task), 1)
    vector = task_vector_for(model, prompts)

    def answers(layer: int, vector_layer: int) -> list[list[int]]:
        return generate_ids(model, prompts.val_queries, Patch(layer, vector.at(vector_layer)))

    assert any(answers(layer, layer) != answers(layer, position) for position, layer in enumerate(SUBSET))


def test_label_first_tokens_hold_every_accepted_answers_first_tokens(model, task, full_unit):
    """Strict scoring reads ``label_first_tokens``: an alias's first tokens must be there, or a
    right answer given as the alias (grapes: "violet" for "purple") is scored wrong."""
    items = {item.id: item for split in ("val", "test") for item in task.split(split)}
    grapes = next(item for item in items.values() if item.aliases)
    alias_only = {t for alias in grapes.aliases for t in model.first_tokens_of(alias)}
    assert alias_only - set(model.first_tokens_of(grapes.label))  # "v": the label starts with "p"
    for row in full_unit["val"] + full_unit["test"]:
        item = items[row["id"]]
        assert row["answers"] == list(item.answers)
        expected = {token for answer in item.answers for token in model.first_tokens_of(answer)}
        assert set(row["label_first_tokens"]) == expected


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_test_demonstrations_come_from_the_val_split_only(seed):
    """xBase shows each test query demonstrations; drawn from the test split they could show other
    test items' answers (test leakage). food_color's test split (21) is larger than its val
    split (10), so sampling it would be possible."""
    task = load_task("food_color")
    config = _config(task, n_examples=5)
    assert len(task.test) > len(task.val) >= config.n_examples + 1
    prompts = UnitPrompts(task, config, seed)
    val_ids = {item.id for item in task.val}
    assert len(prompts.test_demos) == len(task.test)
    for demos in prompts.test_demos:
        assert len(demos) == config.n_examples
        assert {demo.id for demo in demos} <= val_ids
    for query, demos in zip(task.val, prompts.val_demos, strict=True):
        assert {demo.id for demo in demos} <= val_ids - {query.id}
