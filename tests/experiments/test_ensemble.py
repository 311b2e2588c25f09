"""Fig. 8's scores on the real SmolLM2: the seeds' instruction, exemplar and ensemble vectors are
patched in one sweep, and each seed's rows are what that seed alone gives; the instruction
vector's accuracy is that of its own patched answers."""

import pandas as pd
import pytest

from taskvec.evaluation.metrics import first_token_scores
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts
from taskvec.experiments.ensemble import ensemble_scores, item_scores
from taskvec.patching.patch import Patch, generate_ids
from taskvec.tasks.registry import load_task
from taskvec.vectors.extract import last_token_states

pytestmark = pytest.mark.slow

LAYER = 17
COUNTS = (5, 10)


@pytest.fixture(scope="module")
def setting(smollm2):
    task = load_task("country_capital")
    config = ExperimentConfig.create(model=smollm2.name, spec="text-icl", query="text", template="spaced")
    return task, config


def test_one_sweep_for_all_seeds_gives_each_seeds_own_scores(smollm2, setting):
    task, config = setting
    together = ensemble_scores(smollm2, task, config, [1, 2], LAYER, COUNTS)
    alone = pd.concat(
        [ensemble_scores(smollm2, task, config, [seed], LAYER, COUNTS) for seed in (1, 2)], ignore_index=True
    )
    pd.testing.assert_frame_equal(together, alone)
    assert list(together["seed"]) == [1] * 5 + [2] * 5
    assert together["accuracy"].nunique() > 1  # the vectors differ in what they do


def test_the_instruction_rows_score_the_instruction_vectors_own_answers(smollm2, setting):
    task, config = setting
    scores = ensemble_scores(smollm2, task, config, [1], LAYER, COUNTS)
    prompts = UnitPrompts(task, config, 1)
    vector = last_token_states(smollm2, [prompts.instruction])[0, LAYER]
    answers = generate_ids(smollm2, prompts.test_queries, Patch(LAYER, vector))
    correct = [
        first_token_scores(smollm2.decode(ids[:1]), item.answers, smollm2.first_tokens_of)["paper_ci"]
        for item, ids in zip(task.test, answers, strict=True)
    ]
    row = scores[scores["kind"] == "instruction"]
    assert row["accuracy"].item() == pytest.approx(sum(correct) / len(correct))
    # each item's own score, in the split's order, as the claims compare them item by item
    assert row["correct"].item() == "".join("x" if right else "." for right in correct)
    items = item_scores(row)
    assert items["item"].tolist() == list(range(len(task.test)))
    assert items["score"].tolist() == [float(right) for right in correct]
