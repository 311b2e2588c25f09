"""Fig. 8's "n examples" counts examples: with k-shot prompts an exemplar vector averages n / k
of them (the paper's prompts are 5-shot; a run of other prompts must not average n / 5)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from helpers.reliability import write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.experiments import ensemble
from taskvec.tasks.task import load_task_file


@pytest.mark.parametrize(("shots", "averaged"), [(2, [2, 3]), (3, [1, 2])])
def test_an_exemplar_vector_averages_n_over_the_prompts_shots(tmp_path, monkeypatch, shots, averaged):
    drawn = []

    class Recording(random.Random):
        def sample(self, population, k, **kwargs):
            drawn.append(k)
            return super().sample(population, k, **kwargs)

    monkeypatch.setattr(ensemble, "random", SimpleNamespace(Random=Recording))  # its draws alone
    task = load_task_file(write_tiny_task(tmp_path, val=7, test=2))
    config = ExperimentConfig.create(spec="text-icl", n_examples=shots, answer_tokens=1)
    ensemble.ensemble_scores(tiny_llm("llama"), task, config, [1], 1, counts=(5, 6))
    assert drawn == averaged  # 5 // 2, 6 // 2 and 5 // 3, 6 // 3 prompts
