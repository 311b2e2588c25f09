"""A run reads each task's xPatch at the best layer of the validation curve of the metric it
was asked to select by (``selection_metric``), not the paper metric's."""

from __future__ import annotations

import pytest
from helpers.reliability import TINY, write_tiny_task
from helpers.tinyllm import tiny_text_lm

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.evaluation.scoring import layer_curve, select_layer
from taskvec.pipelines import evaluate as evaluate_module
from taskvec.tasks.task import AVERAGE

LAYERS = [1, 2, 3]
#: the layer each metric's doctored validation curve peaks at: three metrics, three layers
PEAKS = {"paper": 1, "paper_ci": 2, "strict": 3}
#: a byte tokenizer's labels are not all scorable (the runs warn so); these tests read no score
pytestmark = pytest.mark.filterwarnings("ignore::taskvec.pipelines.evaluate.UnscorableLabelsWarning")


def _best(val_scores, metric: str) -> int:
    curve = layer_curve(val_scores, metric).loc[AVERAGE]
    return select_layer({int(layer): float(score) for layer, score in curve.items()})


@pytest.fixture
def peaked_val_scores(monkeypatch):
    """The run's validation scores, each first-token metric correct at its ``PEAKS`` layer only:
    a tiny random model's curves are too flat for the metrics to disagree on their own."""
    real = evaluate_module.layer_scores

    def layer_scores(units, split):
        scores = real(units, split)
        if split == "val":
            pairs = zip(scores.metric, scores.layer, strict=True)
            scores = scores.assign(correct=[PEAKS[metric] == layer for metric, layer in pairs])
        return scores

    monkeypatch.setattr(evaluate_module, "layer_scores", layer_scores)


@pytest.mark.parametrize("metric", ["strict", "paper_ci", "paper"])
def test_the_layer_is_chosen_on_the_selection_metrics_validation_curve(
    metric, peaked_val_scores, tmp_path, monkeypatch
):
    """Where the metrics' validation curves peak at different layers, the run's xPatch layer is
    the peak of its ``selection_metric``'s curve, as computed and as read back from the folder
    (which then finds its answers at that layer on disk and computes none)."""
    monkeypatch.chdir(tmp_path)
    options = {**TINY, "tasks": [str(write_tiny_task(tmp_path / "data"))], "layers": LAYERS}
    config = ExperimentConfig.create(**options, selection_metric=metric)
    adapter = tiny_text_lm("llama-gqa")
    computed = evaluate_module.evaluate(config, out=tmp_path / "run", adapter=adapter, show_progress=False)
    assert {m: _best(computed.val_scores, m) for m in PEAKS} == PEAKS  # the metrics disagree
    answered = []  # the layers xPatch answers are computed at
    real_patched_answers = evaluate_module.patched_answers

    def patched_answers(model, task, options, vectors, layer, *rest):
        answered.append(layer)
        return real_patched_answers(model, task, options, vectors, layer, *rest)

    monkeypatch.setattr(evaluate_module, "patched_answers", patched_answers)
    read_back = evaluate_module.evaluate(config, out=tmp_path / "run", adapter=adapter, show_progress=False)
    assert answered == []
    for result in (computed, read_back):
        assert result.task_layers == {"tiny_food": PEAKS[metric]}
        assert result.best_layer == PEAKS[metric]
        xpatch = result.predictions[result.predictions.method == "xpatch"]
        assert set(xpatch.layer) == {PEAKS[metric]}
