"""What taskvec says of a run's inputs while computing it (a label the answer budget cuts, a prompt
past the trained context) is kept with the run: in results.json, its report, ``RunResult`` and
``load_run``, and said again by ``taskvec run``, also when the run is read back or resumed later
(it scrolled by once, before the progress bars, and was gone)."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
from helpers.reliability import TINY, counted_units, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.errors import ResultWarning, recorded_warnings
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines import evaluate as evaluate_module
from taskvec.pipelines.evaluate import evaluate
from taskvec.pipelines.results import load_run


def _shown(monkeypatch) -> list[str]:
    """What ``warnings.showwarning`` shows from now on."""
    shown: list[str] = []
    monkeypatch.setattr(warnings, "showwarning", lambda message, *_rest, **_kw: shown.append(str(message)))
    return shown


def test_a_result_warning_is_recorded_and_shown_once_other_warnings_pass_through(monkeypatch):
    shown = _shown(monkeypatch)
    with recorded_warnings() as said:
        for _ in range(3):  # said for every unit of a run
            warnings.warn("a label is cut", ResultWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert said == ["ResultWarning: a label is cut"]
    assert shown == ["a label is cut", "something else"]


def test_nested_blocks_each_record_and_the_outer_shows_once(monkeypatch):
    shown = _shown(monkeypatch)
    with recorded_warnings() as run:
        warnings.warn("the checks said it", ResultWarning, stacklevel=1)
        with recorded_warnings() as unit:
            warnings.warn("the checks said it", ResultWarning, stacklevel=1)
            warnings.warn("only the unit said it", ResultWarning, stacklevel=1)
    assert unit == ["ResultWarning: the checks said it", "ResultWarning: only the unit said it"]
    assert run == ["ResultWarning: the checks said it", "ResultWarning: only the unit said it"]
    assert shown == ["the checks said it", "only the unit said it"]


def test_any_warning_said_in_every_unit_of_a_run_is_shown_once(monkeypatch):
    """A warning that is not about the results (the sweep runs in full) was shown once per unit:
    each unit's block started a new count of what was shown."""
    shown = _shown(monkeypatch)
    with recorded_warnings() as run:
        for _ in range(4):  # a run's units
            with recorded_warnings() as unit:
                warnings.warn("layer sweep runs in full", UserWarning, stacklevel=1)
    assert shown == ["layer sweep runs in full"]
    assert run == unit == []  # shown, not recorded with the results


def test_a_warning_an_earlier_block_said_is_recorded_again_and_silenced_ones_are_not(monkeypatch):
    _shown(monkeypatch)

    def say():
        warnings.warn("the same place, twice", ResultWarning, stacklevel=1)

    for _ in range(2):  # two runs in one process: the second records it too
        with recorded_warnings() as said:
            say()
        assert said == ["ResultWarning: the same place, twice"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ResultWarning)
        with recorded_warnings() as said:
            say()
    assert said == []


def _cut_labels_task(tmp_path):
    """A tiny real task whose labels take more than TINY's two answer tokens on the tiny model (it
    writes a byte a token): an ``UnscorableLabelsWarning``."""
    return write_tiny_task(tmp_path / "data")


def test_the_warning_is_in_results_json_the_report_and_a_read_back(tmp_path):
    config = ExperimentConfig.create(**{**TINY, "layers": [1], "tasks": [str(_cut_labels_task(tmp_path))]})
    adapter = tiny_llm("llama")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        result = evaluate(config, tmp_path / "run", adapter=adapter, show_progress=False)
    (said,) = [text for text in result.warnings if "take more than the 2 answer tokens" in text]
    assert said.startswith("UnscorableLabelsWarning: task 'tiny_food': ")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["warnings"] == result.warnings
    assert load_run(tmp_path / "run").attrs["warnings"] == result.warnings
    from taskvec.pipelines.results import list_runs

    assert list_runs(tmp_path).set_index("run").loc["run", "warnings"] == len(result.warnings) == 2

    from taskvec.report.tables import write_run_report

    report = write_run_report(result).read_text()
    assert "## Warnings" in report and f"- {said}" in report

    before = (tmp_path / "run" / "results.json").read_bytes()
    again = evaluate(config, tmp_path / "run", adapter=adapter, show_progress=False)  # read back
    assert again.warnings == result.warnings
    assert (tmp_path / "run" / "results.json").read_bytes() == before


def test_a_warning_said_while_a_unit_was_computed_survives_a_resume_in_the_same_order(tmp_path, monkeypatch):
    """Said inside seed 1's unit in a launch that was then killed; the launch that completes the
    run computes only seed 2, and still records seed 1's (the unit kept it), in the order a run
    computed at once records them: equal runs give equal results.json."""
    config = ExperimentConfig.create(
        **{**TINY, "layers": [1], "seeds": [1, 2], "tasks": [str(write_tiny_task(tmp_path))]}
    )
    adapter = tiny_llm("llama")
    real = evaluate_module.run_unit

    def saying(adapter, task, seed, *rest):
        warnings.warn(f"something of seed {seed}'s prompts", ResultWarning, stacklevel=1)
        return real(adapter, task, seed, *rest)

    monkeypatch.setattr(evaluate_module, "run_unit", saying)
    at_once = evaluate(config, tmp_path / "at_once", adapter=adapter, show_progress=False)
    counted_units(monkeypatch, stop_after=1)  # seed 1's unit, then killed
    with pytest.raises(KeyboardInterrupt):
        evaluate(config, tmp_path / "run", adapter=adapter, show_progress=False)
    monkeypatch.setattr(evaluate_module, "run_unit", saying)
    computed = counted_units(monkeypatch)
    result = evaluate(config, tmp_path / "run", adapter=adapter, show_progress=False)
    assert [seed for _task, seed in computed] == [2]
    seeds = [text for text in result.warnings if text.startswith("ResultWarning: ")]
    assert seeds == [f"ResultWarning: something of seed {seed}'s prompts" for seed in (1, 2)]
    assert result.warnings == at_once.warnings
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["warnings"] == result.warnings


def test_a_run_that_said_nothing_records_none_and_an_older_run_records_nothing_known(tmp_path):
    """``taskvec runs`` counts 0 for a run that said nothing, and leaves the count blank for a run
    of a taskvec that recorded none (it said 0 there, as if it knew), whose results.json reads back
    unchanged."""
    from taskvec.pipelines.results import list_runs
    from taskvec.storage.run_folder import SEAL, sealed

    task = write_tiny_task(tmp_path / "data")
    config = ExperimentConfig.create(**{**TINY, "layers": [1], "template": "paper", "tasks": [str(task)]})
    config = config.model_copy(update={"answer_tokens": 8})  # the tiny model's labels fit whole
    adapter = tiny_llm("llama")
    quiet = evaluate(config, tmp_path / "runs" / "quiet", adapter=adapter, show_progress=False)
    assert quiet.warnings == []
    assert json.loads((tmp_path / "runs" / "quiet" / "results.json").read_text())["warnings"] == []
    older = tmp_path / "runs" / "older"
    evaluate(config, older, adapter=adapter, show_progress=False)
    recorded = json.loads((older / "results.json").read_text())
    kept = {key: value for key, value in recorded.items() if key not in (SEAL, "warnings")}
    (older / "results.json").write_text(json.dumps(sealed(kept), indent=2, ensure_ascii=False) + "\n")
    before = (older / "results.json").read_bytes()
    assert evaluate(config, older, adapter=adapter, show_progress=False).warnings == []
    assert (older / "results.json").read_bytes() == before
    listed = list_runs(tmp_path / "runs").set_index("run")["warnings"]
    assert listed["quiet"] == 0 and listed["older"] is pd.NA


def test_taskvec_run_says_the_recorded_warnings_again_under_its_tables(tmp_path):
    from typer.testing import CliRunner

    from taskvec.cli import app

    llm = tiny_llm("llama", layers=2)
    llm.model.save_pretrained(tmp_path / "model")
    llm.tokenizer.save_pretrained(tmp_path / "model")
    args = ["run", "--model", str(tmp_path / "model"), "--tasks", str(_cut_labels_task(tmp_path))]
    args += ["--seed", "1", "--template", "spaced", "--layer", "1", "--answer-tokens", "2"]
    args += ["--out", str(tmp_path / "run")]
    for _ in range(2):  # computed, then read back without loading: said under the tables both times
        done = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
        assert done.exit_code == 0, done.output
        tail = done.output.split("warning(s) about this run's inputs, recorded in results.json")[1]
        said = [line for line in tail.splitlines() if line.startswith("warning: ")]
        assert len(said) == 2 and "take more than the 2 answer tokens" in said[0], tail
