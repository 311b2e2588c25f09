import pandas as pd
import pytest

from taskvec.evaluation.scoring import (
    choose_layer,
    layer_scores,
    select_layer,
    split_predictions,
    summary_table,
)


def _row(item, label, no_context, xbase, majority, xpatch):
    return {
        "id": item,
        "input": item,
        "label": label,
        "answers": [label],
        "label_first_tokens": [" " + label],
        "no_context": no_context,
        "no_context_answer": no_context,
        "xbase": xbase,
        "xbase_answer": xbase,
        "majority": majority,
        "xpatch": xpatch,
        "demos": [],
    }


def _unit(seed):
    # two items, two layers; item b's majority label happens to be right
    return {
        "task": "toy",
        "seed": seed,
        "layers": [0, 1],
        "val": [
            {"id": "a", "answers": ["x"], "label_first_tokens": [" x"], "xpatch": [" y", " x"]},
            {"id": "b", "answers": ["z"], "label_first_tokens": [" z"], "xpatch": [" z", " z"]},
        ],
        "test": [
            _row("a", "x", " q", " x", "z", [" y", " x"]),
            _row("b", "z", " z", " q", "z", [" q", " z"]),
        ],
    }


def test_layer_choice_takes_the_best_mean_and_the_lowest_layer_on_ties():
    assert select_layer({0: 0.2, 1: 0.5, 2: 0.5}) == 1
    assert select_layer({3: 0.0, 1: 0.0}) == 1
    with pytest.raises(ValueError):
        select_layer({})
    assert choose_layer(layer_scores([_unit(1)], "val"), "paper") == 1


def test_baselines_and_methods_are_scored_on_a_constructed_case():
    units = [_unit(1), _unit(2)]
    predictions = split_predictions(units, 1, {})
    table = summary_table(predictions, "paper")["mean"]
    assert table.loc["toy", "no_context"] == pytest.approx(0.5)  # only b
    assert table.loc["toy", "majority"] == pytest.approx(0.5)  # "z" is right for b only
    assert table.loc["toy", "xbase"] == pytest.approx(0.5)  # only a
    assert table.loc["toy", "xpatch"] == pytest.approx(1.0)  # layer 1 right for both
    assert table.loc["average", "xpatch"] == pytest.approx(1.0)


def test_std_is_over_seeds():
    good, bad = _unit(1), _unit(2)
    bad["test"][0]["xpatch"] = [" y", " y"]
    table = summary_table(split_predictions([good, bad], 1, {}), "paper")
    assert table["mean"].loc["toy", "xpatch"] == pytest.approx(0.75)
    assert table["std"].loc["toy", "xpatch"] == pytest.approx(0.25)


def test_exact_metric_is_missing_until_answers_are_generated():
    predictions = split_predictions([_unit(1)], 1, {})
    assert predictions[predictions.method == "xpatch"]["exact"].isna().all()
    with_answers = split_predictions([_unit(1)], 1, {("toy", 1): [(" x", " x"), (" q", " q")]})
    xpatch = with_answers[with_answers.method == "xpatch"]
    assert xpatch["exact"].tolist() == [True, False]
    assert isinstance(summary_table(with_answers, "exact"), pd.DataFrame)


def test_a_unit_without_a_test_sweep_scores_xpatch_from_the_chosen_layer_answers():
    """``test_layers="chosen"``: no per-layer test predictions; xPatch is the first token of the
    answer generated at the chosen layer, and no test curve is made up."""
    unit = _unit(1)
    unit["test_layers"] = []
    for row in unit["test"]:
        row["xpatch"] = []
    answers = {("toy", 1): [(" x", " x y"), (" q", " q")]}
    predictions = split_predictions([unit], 1, answers)
    xpatch = predictions[predictions.method == "xpatch"]
    assert xpatch["prediction"].tolist() == [" x", " q"]
    assert xpatch["paper"].tolist() == [True, False]
    assert layer_scores([unit], "test").empty
    assert not layer_scores([unit], "val").empty
