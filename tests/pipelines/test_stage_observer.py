"""A reproduction's ``StageObserver`` is told as each run of a stage starts and ends (how
``bench/arithmetic.py`` splits a reproduction by stage; ``tests/test_bench_smallest.py`` runs
that on a whole quick reproduction, every stage included)."""

from __future__ import annotations

from helpers.families.llava import build_llava
from helpers.reliability import write_tiny_task

from taskvec.experiments.conditions import Condition
from taskvec.pipelines.reproduce import run_conditions


def test_each_condition_run_is_told_as_it_starts_and_once_its_folder_is_complete(tmp_path):
    task = str(write_tiny_task(tmp_path / "task", test=2))
    condition = Condition("text-icl", "image", "noto")
    root = tmp_path / "conditions"
    told = []

    def observer(moment, stage, run):
        status = root / run / "status.json"
        told.append((moment, stage, run, status.is_file() and '"complete"' in status.read_text()))

    options = dict(tasks=[task], seeds=[1], layers=[1], answer_tokens=2)
    results = run_conditions(build_llava(), [condition], root, False, None, observer, **options)
    assert told == [
        ("start", "matrix", condition.name, False),
        ("end", "matrix", condition.name, True),
    ]
    assert results[condition].folder.root == root / condition.name
