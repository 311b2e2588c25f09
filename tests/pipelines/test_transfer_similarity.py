"""Table 4's cosine of the LLM's and the VLM's vectors: the reproduction computes it in one place
(``Reproduction.llm_cosines``), and ``scripts/embedded_lora_targets.py`` reports the same numbers.
On a tiny LLaVA and a tiny Llama of its width (random weights: the numbers mean nothing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.families.llava import build_llava
from helpers.reliability import write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.analysis.similarity import cosine_matrix
from taskvec.experiments.conditions import Condition
from taskvec.pipelines.reproduce import ReproduceConfig, Reproduction, run_conditions
from taskvec.vectors.task_vector import TaskVector

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "embedded_lora_targets.py"


@pytest.fixture(scope="module")
def reproduction(tmp_path_factory) -> Reproduction:
    """The two conditions and the transfer Table 4 reads, two tasks, one seed, one style."""
    root = tmp_path_factory.mktemp("reproduction")
    tasks = [str(write_tiny_task(root.parent / "tasks", name, test=2)) for name in ("tiny_a", "tiny_b")]
    adapter = build_llava()
    config = ReproduceConfig.create(
        model=adapter.name, tasks=tasks, seeds=[1], styles=["noto"], answer_tokens=2
    )
    reproduction = Reproduction(adapter, config, root, show_progress=False)
    reproduction.start()
    conditions = [Condition("text-icl", "image", "noto"), Condition("image-icl", "image", "noto")]
    options = {**reproduction.run_options(), "layers": [1]}
    reproduction.conditions = run_conditions(adapter, conditions, root / "conditions", False, **options)
    reproduction.run_transfer(tiny_llm("llama", hidden=32, layers=3))
    return reproduction


def _mean_cosines(reproduction, spec: str, result, layer: int) -> tuple[float, float]:
    """The same and different-task means, from the cosine matrix of all the vectors."""
    names = [t.name for t in reproduction.tasks]
    vectors = {}
    for source, spec_of, run in (("llm", "text-icl", reproduction.transfer["noto"]), ("vlm", spec, result)):
        for name in names:
            vectors[(name, source)] = TaskVector.load(run.folder.vector_path(name, spec_of, 1)).at(layer)
    matrix = cosine_matrix(vectors)
    pairs = [(matrix.loc[(a, "llm"), (b, "vlm")], a == b) for a in names for b in names]
    return np.mean([c for c, same in pairs if same]), np.mean([c for c, same in pairs if not same])


def test_table4_similarity_is_the_mean_cosine_of_same_and_of_different_tasks(reproduction):
    table = reproduction.transfer_similarity()
    layer = reproduction.main_condition().best_layer
    assert list(table.index) == ["LLM text ICL vs VLM text ICL", "LLM text ICL vs VLM image ICL"]
    assert (table["layer"] == layer).all()
    for pair, condition in zip(table.index, reproduction.conditions, strict=True):
        same, different = _mean_cosines(
            reproduction, condition.spec, reproduction.conditions[condition], layer
        )
        assert table.loc[pair, "same task"] == pytest.approx(same, abs=1e-4)
        assert table.loc[pair, "different tasks (baseline)"] == pytest.approx(different, abs=1e-4)


def test_the_script_reports_the_reproductions_numbers(reproduction):
    spec = importlib.util.spec_from_file_location("embedded_lora_targets", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    figures = script._cosines(reproduction, "noto")
    row = reproduction.transfer_similarity().loc["LLM text ICL vs VLM text ICL"]
    assert figures["layer"] == row["layer"]
    assert round(figures["same task"], 4) == row["same task"]
    assert round(figures["different tasks"], 4) == row["different tasks (baseline)"]


def test_where_tasks_chose_their_own_layers_each_tasks_pairs_are_read_at_its_layer(reproduction, monkeypatch):
    """Under ``--layer-selection per-task`` each task's vectors are patched at its own layer; its
    cosines (same task, and against the other tasks: the baseline) are read there too, not at the
    layer of the tasks' mean curve."""
    main = reproduction.main_condition()
    monkeypatch.setattr(main, "task_layers", {"tiny_a": 0, "tiny_b": 2})
    condition = Condition("text-icl", "image", "noto")
    runs = {"llm": reproduction.transfer["noto"], "vlm": reproduction.conditions[condition]}
    vector = {
        (source, name, layer): TaskVector.load(run.folder.vector_path(name, "text-icl", 1)).at(layer)
        for source, run in runs.items()
        for name in ("tiny_a", "tiny_b")
        for layer in (0, 1, 2)
    }

    def cosine(a, b, layer):
        return float(torch.cosine_similarity(vector[("llm", a, layer)], vector[("vlm", b, layer)], dim=0))

    layer, same, different = reproduction.llm_cosines(condition)
    assert layer == "tiny_a 0, tiny_b 2"
    assert same == pytest.approx((cosine("tiny_a", "tiny_a", 0) + cosine("tiny_b", "tiny_b", 2)) / 2)
    assert different == pytest.approx((cosine("tiny_a", "tiny_b", 0) + cosine("tiny_b", "tiny_a", 2)) / 2)
    assert different != pytest.approx((cosine("tiny_a", "tiny_b", 1) + cosine("tiny_b", "tiny_a", 1)) / 2)
