"""``taskvec run`` is never silent for minutes: a line says the model is loading before the first
bar, and another what happens after the units bar ends (test answers, results; the command
then says it writes the tables and plots)."""

from __future__ import annotations

from helpers.reliability import TINY, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.evaluate import evaluate


def test_loading_and_writing_are_announced(tmp_path, monkeypatch, capsys):
    task = write_tiny_task(tmp_path / "data")
    adapter = tiny_llm("llama", layers=3)
    monkeypatch.setattr("taskvec.pipelines.evaluate.load_model", lambda _name, _options=None: adapter)
    config = ExperimentConfig.create(**{**TINY, "layers": [1], "tasks": [str(task)], "seeds": [1]})
    evaluate(config, tmp_path / "run", show_progress=True)
    err = capsys.readouterr().err
    assert f"loading {config.model} ..." in err
    assert "writing results" in err
    assert err.index("loading") < err.index("writing results")


def test_a_quiet_run_says_nothing(tmp_path, capsys):
    task = write_tiny_task(tmp_path / "data")
    config = ExperimentConfig.create(**{**TINY, "layers": [1], "tasks": [str(task)], "seeds": [1]})
    evaluate(config, tmp_path / "run", adapter=tiny_llm("llama", layers=3), show_progress=False)
    assert capsys.readouterr().err == ""
