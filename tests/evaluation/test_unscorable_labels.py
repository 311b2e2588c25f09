"""Labels a metric can never credit under the run's model and template are said before the run:
one longer than the answer budget (whole_label, exact), and one whose first token carries nothing
of it, a bare space or one byte of a letter (paper, strict and the layer choice)."""

from __future__ import annotations

import subprocess
import sys
import warnings

from helpers.reliability import write_task
from helpers.tinyllm import tiny_llm

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.evaluate import UnscorableLabelsWarning, check_answers_scorable
from taskvec.tasks.task import load_task_file

ITEMS = [
    {"id": f"i{k}", "input": f"thing {k}", "output": label}
    for k, label in enumerate(["ab", "cd", "Αθ", "ef", "gh", "ij"])
]


def _check(tmp_path, template: str, answer_tokens: int, items=ITEMS) -> list[str]:
    task = load_task_file(write_task(tmp_path, val=items[:4], test=items[4:]))
    config = ExperimentConfig.create(template=template, answer_tokens=answer_tokens)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_answers_scorable(tiny_llm("llama"), [task], config)
    assert all(issubclass(w.category, UnscorableLabelsWarning) for w in caught)
    return [str(w.message) for w in caught]


def test_a_label_that_starts_with_part_of_a_character_is_named(tmp_path):
    """The tiny tokenizer is byte-level: Greek starts with one byte of its first letter."""
    (said,) = _check(tmp_path, "paper", 6)
    assert "1 of 6 labels begin with a token that is part of a character" in said
    assert "'Αθ' starts '\\ufffd'" in said or "'Αθ' starts '�'" in said
    assert "read whole_label" in said and "--template paper" not in said


def test_under_the_spaced_template_a_bare_space_first_token_is_named_with_the_cure(tmp_path):
    said = _check(tmp_path, "spaced", 6)
    assert any(
        "6 of 6 labels begin with a token that is a bare space" in s and "--template paper" in s for s in said
    )


def test_a_label_longer_than_the_answer_budget_is_named(tmp_path):
    (said,) = _check(
        tmp_path,
        "paper",
        3,
        [{**item, "output": "ab"} for item in ITEMS[:5]] + [ITEMS[5] | {"output": "long"}],
    )
    assert "1 of 6 labels take more than the 3 answer tokens" in said and "'long', 4 tokens" in said
    # what to do, said to the end (the sentence stopped at "a longer answer budget ... would")
    assert said.endswith("an answer budget of 4 tokens (--answer-tokens) would credit them")


def test_labels_every_metric_can_credit_say_nothing(tmp_path):
    assert _check(tmp_path, "paper", 6, [{**item, "output": f"l{k}"} for k, item in enumerate(ITEMS)]) == []


def test_the_command_shows_a_warning_as_one_line(tmp_path):
    """``taskvec``'s warnings are one ``warning: ...`` line each, not Python's file and source line."""
    code = (
        "import warnings; from taskvec import cli; "
        "cli.app = lambda **_: warnings.warn('task x: something a researcher should know', UserWarning); "
        "cli.main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"COLUMNS": "200"}
    )
    assert done.returncode == 0, done.stderr
    assert "warning: task x: something a researcher should know" in done.stderr
    assert "warnings.warn(" not in done.stderr and "UserWarning" not in done.stderr


def test_labels_the_tokenizer_merges_with_the_delimiter_are_named_with_the_cure(tmp_path, smollm2):
    """Under the paper's template SmolLM2 writes ``A:-5`` as ``A`` ``:-`` ``5``: the demonstrations
    never show the lone ``:`` a query ends with (a task of negative numbers scored xBase 0.00
    under ``paper``, 1.00 under ``spaced``, and nothing said why)."""
    from taskvec.pipelines.evaluate import DelimiterMergeWarning, check_delimiter_kept

    labels = ["-5", "(b)", "7", "8"]
    items = [{"id": f"n{k}", "input": str(k), "output": label} for k, label in enumerate(labels)]
    task = load_task_file(write_task(tmp_path, val=items[:2], test=items[2:]))

    def said(template: str) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_delimiter_kept(smollm2, [task], ExperimentConfig.create(template=template))
        assert all(issubclass(w.category, DelimiterMergeWarning) for w in caught)
        return [str(w.message) for w in caught]

    (paper,) = said("paper")
    assert "2 of 4 labels merge with the delimiter ':' under template 'paper'" in paper
    assert "'-5' is written [':-', '5']" in paper and "(spaced)" in paper
    assert said("spaced") == []


def test_a_unit_records_the_labels_longer_than_the_answer_budget(tmp_path):
    """What scoring holds the baselines to, recorded where a read-back finds it (the unit)."""
    from taskvec.evaluation.protocol import labels_over_budget

    items = [{**item, "output": "ab"} for item in ITEMS[:5]] + [ITEMS[5] | {"output": "long"}]
    task = load_task_file(write_task(tmp_path, val=items[:4], test=items[4:]))
    config = ExperimentConfig.create(template="paper", answer_tokens=3)
    assert labels_over_budget(tiny_llm("llama"), task, config) == ["long"]
    assert labels_over_budget(tiny_llm("llama"), task, config.model_copy(update={"answer_tokens": 4})) == []
