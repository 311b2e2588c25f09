"""The cached, batched layer sweep gives the same predictions as the paper's per-layer procedure."""

import random

import pytest
import torch

from taskvec.errors import LayerError, VectorMismatchError
from taskvec.patching.patch import Patch, generate
from taskvec.patching.sweep import sweep, sweep_naive
from taskvec.prompts.inputs import sample_demos
from taskvec.prompts.template import PAPER, SPACED
from taskvec.tasks.registry import load_task
from taskvec.vectors.extract import extract


def _vector_and_queries(adapter, template, n_queries):
    task = load_task("country_capital")
    rng = random.Random(0)
    prompts = [
        template.icl([(d.input, d.label) for d in sample_demos(task.val, 5, rng, q)], q.input)
        for q in task.val[:10]
    ]
    vector = extract(adapter, prompts, task=task.name, spec="text-icl")
    queries = [template.query(q.input) for q in task.test[:n_queries]]
    return vector, queries


@pytest.mark.parametrize("template", [PAPER, SPACED], ids=["paper", "spaced"])
def test_fast_sweep_equals_naive_sweep_prediction_for_prediction(smollm2, template):
    vector, queries = _vector_and_queries(smollm2, template, 6)
    layers = list(range(smollm2.num_layers))
    fast = sweep(smollm2, queries, vector.vectors, layers)
    naive = sweep_naive(smollm2, queries, vector.vectors, layers)
    assert torch.equal(fast.patched, naive.patched)
    assert torch.equal(fast.clean, naive.clean)
    # and the patch really does something at some layer
    assert (fast.patched != fast.clean[:, None]).any()


def test_sweep_on_a_layer_subset_matches_the_full_sweep(smollm2):
    vector, queries = _vector_and_queries(smollm2, SPACED, 4)
    full = sweep(smollm2, queries, vector.vectors, list(range(smollm2.num_layers)))
    subset = sweep(smollm2, queries, vector.vectors[[3, 20]], [3, 20])
    assert torch.equal(subset.patched, full.patched[:, [3, 20]])


def test_patched_generation_matches_the_sweep_first_token(smollm2):
    vector, queries = _vector_and_queries(smollm2, SPACED, 3)
    result = sweep(smollm2, queries, vector.vectors[[21]], [21])
    texts = generate(smollm2, queries, Patch(21, vector.at(21)), max_new_tokens=3)
    for text, token in zip(texts, result.patched[:, 0].tolist(), strict=True):
        assert text.startswith(smollm2.decode([token]))


def test_bad_layers_and_widths_are_refused(smollm2):
    vector, queries = _vector_and_queries(smollm2, SPACED, 1)
    with pytest.raises(LayerError, match="out of range"):
        sweep(smollm2, queries, vector.vectors[:1], [smollm2.num_layers])
    with pytest.raises(LayerError):
        Patch(-1, vector.at(0)).check(smollm2)
    with pytest.raises(VectorMismatchError, match="576 wide"):
        Patch(3, torch.zeros(640)).check(smollm2)
