"""``taskvec align`` checks every stage's options before the first stage trains (a bad ``--steps``
failed after the recogniser's quarter of an hour), and a stage that fails after training leaves
the folder's weights and log as they were (the log was rewritten before the stage could fail,
and ``--epochs -1`` emptied the shipped one)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from taskvec.align.recogniser import RecogniserConfig
from taskvec.cli import app
from taskvec.errors import StorageError
from taskvec.pipelines import align as align_module


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--steps", "0"], "--steps: Input should be greater than or equal to 1"),
        (["--stage", "lora", "--steps", "-3"], "--steps: Input should be greater than or equal to 1"),
        (["--epochs", "-1"], "--epochs: Input should be greater than 0"),
    ],
)
def test_bad_options_are_refused_before_any_stage_trains(tmp_path, monkeypatch, args, flag):
    started = []
    monkeypatch.setattr(align_module, "align_recogniser", lambda *a, **k: started.append("recogniser"))
    result = CliRunner().invoke(app, ["align", *args, "--out", str(tmp_path / "weights")])
    assert result.exit_code != 0 and flag in result.output
    assert started == [] and not (tmp_path / "weights").exists()


def test_a_stage_that_fails_after_training_leaves_the_weights_and_the_log_as_they_were(tmp_path, monkeypatch):
    log = tmp_path / "logs" / "recogniser.jsonl"
    log.parent.mkdir()
    log.write_text('{"step": 0, "loss": 1.0}\n')
    trained = SimpleNamespace(encoder=torch.nn.Linear(1, 1), head=torch.nn.Linear(1, 1))
    monkeypatch.setattr(align_module.suite, "entities", lambda: ["1f415"])
    log_of_training = [{"step": 0, "loss": 0.5}]
    monkeypatch.setattr(align_module, "_train_recogniser", lambda *a, **k: (trained, log_of_training))
    monkeypatch.setattr(align_module, "classifier_accuracy", lambda *a: pd.DataFrame({"top1": [0.5]}))

    def full_disk(*args, **kwargs):
        raise StorageError("no space left on the device")

    monkeypatch.setattr(align_module, "save_weights", full_disk)
    with pytest.raises(StorageError, match="no space"):
        align_module.align_recogniser(RecogniserConfig(), tmp_path)
    assert log.read_text() == '{"step": 0, "loss": 1.0}\n'
