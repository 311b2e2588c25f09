"""Fig. 8's "n examples" counts examples: with k-shot prompts an exemplar vector averages n / k
of them (the paper's prompts are 5-shot; a run of other prompts must not average n / 5)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from helpers.reliability import write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.experiments import ensemble
from taskvec.tasks.task import load_task_file


@pytest.mark.parametrize(("shots", "counts", "averaged"), [(2, (4, 6), [2, 3]), (3, (3, 6), [1, 2])])
def test_an_exemplar_vector_averages_n_over_the_prompts_shots(tmp_path, monkeypatch, shots, counts, averaged):
    drawn = []

    class Recording(random.Random):
        def sample(self, population, k, **kwargs):
            drawn.append(k)
            return super().sample(population, k, **kwargs)

    monkeypatch.setattr(ensemble, "random", SimpleNamespace(Random=Recording))  # its draws alone
    task = load_task_file(write_tiny_task(tmp_path, val=7, test=2))
    config = ExperimentConfig.create(spec="text-icl", n_examples=shots, answer_tokens=1)
    ensemble.ensemble_scores(tiny_llm("llama"), task, config, [1], 1, counts=counts)
    assert drawn == averaged  # 4 / 2, 6 / 2 and 3 / 3, 6 / 3 prompts


@pytest.mark.parametrize(
    ("counts", "words"),
    [((5,), "ensemble count 5: .* a multiple of 2"), ((16,), "8 prompts .* 'tiny_food' has 7 .* up to 14")],
)
def test_a_count_that_is_not_whole_prompts_of_the_split_is_refused(tmp_path, counts, words):
    """A count between two multiples averaged fewer examples than its label said, and one beyond
    the val split averaged every prompt, under its own label, silently."""
    task = load_task_file(write_tiny_task(tmp_path, val=7, test=2))
    config = ExperimentConfig.create(spec="text-icl", n_examples=2, answer_tokens=1)
    with pytest.raises(ConfigError, match=words):
        ensemble.ensemble_scores(tiny_llm("llama"), task, config, [1], 1, counts=counts)
