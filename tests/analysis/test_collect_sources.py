"""The analysis's task vectors record which items built their prompts, as a run's do."""

from __future__ import annotations

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
