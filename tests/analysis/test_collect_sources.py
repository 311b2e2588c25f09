"""The analysis's task vectors record which items built their prompts, as a run's do."""

from __future__ import annotations

import torch
from helpers.reliability import write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.analysis.collect import collect
from taskvec.prompts.template import get_template
from taskvec.tasks.task import load_task_file


def test_a_capped_analysis_vector_records_the_prompts_it_averaged(tmp_path):
    task = load_task_file(write_tiny_task(tmp_path))
    adapter = tiny_llm("llama", layers=2)
    got = collect(adapter, task, "text-icl", get_template("spaced"), extraction_prompts=3, prompts=2)
    sources = got.vector.meta.sources
    assert [s.query.id for s in sources] == [
        item.id for item in task.val[:3]
    ] and got.vector.meta.n_prompts == 3
    assert all(len(s.demos) == 5 and s.query.id not in {d.id for d in s.demos} for s in sources)
    instruction = collect(adapter, task, "instruction", get_template("spaced"), prompts=2).vector.meta.sources
    assert [(s.kind, s.instruction) for s in instruction] == [("instruction", task.instruction)]


def test_collecting_counts_the_vectors_prompts_then_the_test_splits(tmp_path):
    """``taskvec analyze`` shows each piece's prompts as they run (``on_progress``)."""
    task = load_task_file(write_tiny_task(tmp_path, test=3))
    adapter = tiny_llm("llama", layers=2)
    for spec, vector_prompts in (("text-icl", 4), ("instruction", 1)):
        told: list[tuple[int, int]] = []
        got = collect(
            adapter,
            task,
            spec,
            get_template("spaced"),
            extraction_prompts=4,
            prompts=3,
            memory_budget_mb=1.0,  # about two prompts a batch
            on_progress=lambda done, total, told=told: told.append((done, total)),
        )
        total = vector_prompts + 3
        assert told[0] == (0, total) and told[-1] == (total, total) and len(told) > 2
        assert [d for d, _ in told] == sorted(d for d, _ in told) and {t for _, t in told} == {total}
        assert (vector_prompts, total) in told  # the vector's prompts first, then the test split's
        quiet = collect(
            adapter, task, spec, get_template("spaced"), extraction_prompts=4, prompts=3, memory_budget_mb=1.0
        )
        assert torch.equal(got.states, quiet.states) and torch.equal(got.vector.vectors, quiet.vector.vectors)
