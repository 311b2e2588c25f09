"""A task vector is the mean of its prompts' delimiter states, a mean of vectors is their
elementwise mean, and each seed's xPatch answers come from that seed's own vector."""

from __future__ import annotations

import pytest
import torch
from helpers.reliability import write_tiny_task
from helpers.tinyllm import tiny_text_lm
from helpers.vectors import toy_meta

from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts, patched_answers, task_vector_for
from taskvec.tasks.registry import load_task
from taskvec.vectors.extract import extract, last_token_states
from taskvec.vectors.task_vector import TaskVector, VectorMeta


@pytest.fixture(scope="module")
def model():
    """A tiny LM whose answers depend on the vector patched in."""
    return tiny_text_lm("llama-gqa")


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return load_task(write_tiny_task(tmp_path_factory.mktemp("task"), test=6))


@pytest.fixture(scope="module")
def config(task):
    return ExperimentConfig.create(tasks=[task.name], seeds=[1, 2], template="spaced", answer_tokens=2)


def test_extract_averages_every_prompts_delimiter_states(model, task, config):
    """The paper's task vector is the per-layer mean over all prompts, not their sum nor one
    prompt's state."""
    prompts = UnitPrompts(task, config, 1).extraction
    states = last_token_states(model, prompts)  # [prompts, layers, hidden]
    vector = extract(model, prompts, task=task.name, spec="text-icl", n_examples=config.n_examples)
    assert vector.vectors.shape == (model.num_layers, model.hidden_size)
    assert vector.meta.n_prompts == len(prompts) > 1
    assert not torch.allclose(states[0], states.mean(0))  # the prompts' states differ
    torch.testing.assert_close(vector.vectors, states.mean(0))


def _meta(seed: int) -> VectorMeta:
    return toy_meta(layers=2, width=3, model_fingerprint="f", n_prompts=7, seed=seed)


def test_a_mean_of_vectors_is_their_elementwise_mean():
    """``TaskVector.mean`` (the ensemble of instruction and exemplar vectors) averages every
    value of every vector, not the first vector's."""
    values = [
        torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        torch.tensor([[3.0, -2.0, 0.0], [0.0, 1.0, 2.0]]),
        torch.tensor([[2.0, 3.0, 6.0], [-1.0, 0.0, 7.0]]),
    ]
    vectors = [TaskVector(v, _meta(seed=1)) for v in values]
    mean = TaskVector.mean(vectors, spec="ensemble")
    torch.testing.assert_close(mean.vectors, torch.stack(values).mean(0))
    torch.testing.assert_close(mean.at(1), torch.tensor([1.0, 2.0, 5.0]))


def test_each_seeds_patched_answers_come_from_its_own_vector(model, task, config):
    """The seeds' xPatch answers run together (one prompt prefix for all): each seed's answers
    must be those of its own vector patched alone. The vectors here are far apart, so that the
    two seeds' answers really differ."""
    layer = 2
    template = task_vector_for(model, UnitPrompts(task, config, 1))
    generator = torch.Generator().manual_seed(0)
    vectors = {
        seed: TaskVector(8 * torch.randn(template.vectors.shape, generator=generator), template.meta)
        for seed in (1, 2)
    }
    together = patched_answers(model, task, config, vectors, layer)
    alone = {
        seed: patched_answers(model, task, config, {seed: vector}, layer)[seed]
        for seed, vector in vectors.items()
    }
    assert alone[1] != alone[2]
    assert together == alone
