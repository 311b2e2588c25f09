import pandas as pd
import pytest

from taskvec.evaluation.scoring import (
    answer_diversity,
    choose_layer,
    choose_layers,
    flat_selection_curves,
    is_collapsed,
    layer_curve,
    layer_scores,
    select_layer,
    split_predictions,
    summary_table,
    tied_selection_curves,
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


def test_one_seed_has_no_std_rather_than_a_std_of_zero():
    table = summary_table(split_predictions([_unit(1)], 1, {}), "paper")
    assert table["std"].isna().all().all()
    assert table["mean"].notna().all().all()


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


def _collapse_unit(seed: int, answers: list[str]) -> dict:
    """Ten test items of ten labels, xPatch answering ``answers`` (one per item); the val split's
    most frequent label is "v"."""
    labels = [f"l{i}" for i in range(10)]
    test = [_row(f"t{i}", label, " q", " q", "", [answers[i]]) for i, label in enumerate(labels)]
    val = [
        {"id": f"v{i}", "answers": [label], "label_first_tokens": [" " + label], "xpatch": [" q"]}
        for i, label in enumerate(["w", "v", "v", "u"])
    ]
    return {"task": "toy", "seed": seed, "layers": [0], "val": val, "test": test}


def test_label_prior_answers_the_most_frequent_val_label_for_every_item():
    unit = _collapse_unit(1, [" q"] * 10)
    unit["test"][3]["label"], unit["test"][3]["answers"] = "v", ["v"]
    predictions = split_predictions([unit], 0, {})
    prior = predictions[predictions.method == "label_prior"]
    assert set(prior.prediction) == {"v"} and len(prior) == 10
    assert prior["paper"].tolist() == [i == 3 for i in range(10)]
    assert prior["whole_label"].tolist() == prior["paper"].tolist()
    assert summary_table(predictions, "paper")["mean"].loc["toy", "label_prior"] == pytest.approx(0.1)


def test_a_collapsed_method_is_flagged_and_a_diverse_one_is_not():
    collapsed = _collapse_unit(1, [" l0"] * 8 + [" l8", " l9"])  # one answer for 8 of 10 items
    diverse = _collapse_unit(1, [f" l{i}" for i in range(10)])
    for unit, flagged in ((collapsed, True), (diverse, False)):
        diversity = answer_diversity(split_predictions([unit], 0, {}))
        row = diversity.loc[("toy", "xpatch")]
        assert bool(row.collapsed) is flagged
        assert row.label_share == pytest.approx(0.1)  # ten labels, one item each
    row = answer_diversity(split_predictions([collapsed], 0, {})).loc[("toy", "xpatch")]
    assert row.top_share == pytest.approx(0.8) and row.distinct == pytest.approx(0.3)
    assert row.top_answer == "l0"
    # the label prior answers one label for everything by construction: a baseline, never flagged
    prior = answer_diversity(split_predictions([diverse], 0, {})).loc[("toy", "label_prior")]
    assert prior.top_share == 1.0 and not prior.collapsed


def test_blank_first_tokens_are_told_apart_by_their_answers_first_word():
    """Answers whose first token is a space or a newline (' 1.1', ' 1', '\\nA:') all had the key
    "" and made a method look collapsed; their first non-blank words tell them apart."""
    firsts = [" ", "\n"] * 5
    answers = [" 1.1", " 1\n", "\nA:\n", " Paris", "\nB", " 2", " x y", "\n\nz", " 3.", " l9"]
    unit = _collapse_unit(1, firsts)
    predictions = split_predictions([unit], 0, {("toy", 1): list(zip(firsts, answers, strict=True))})
    row = answer_diversity(predictions).loc[("toy", "xpatch")]
    assert row.distinct == pytest.approx(1.0) and not row.collapsed
    same = _collapse_unit(1, firsts)  # the same answer after the blank is still one answer
    predictions = split_predictions([same], 0, {("toy", 1): [(f, " Paris\n") for f in firsts]})
    row = answer_diversity(predictions).loc[("toy", "xpatch")]
    assert row.top_answer == "paris" and row.top_share == pytest.approx(1.0) and row.collapsed


def test_collapse_is_judged_against_the_splits_own_top_label_share():
    """The rule needs both: the top answer >= 0.5 of the items and >= 2x the split's top-label
    share (where one label is 40% of the items, answering it for 60% is no collapse)."""
    assert is_collapsed(0.5, 0.25) and not is_collapsed(0.49, 0.1)
    assert not is_collapsed(0.6, 0.4) and not is_collapsed(0.79, 0.4) and is_collapsed(0.8, 0.4)


def _curves_unit(task: str, seed: int, right: dict[int, int]) -> dict:
    """Ten val items; at layer l the first ``right[l]`` are answered right."""
    val = [
        {
            "id": f"v{i}",
            "answers": ["x"],
            "label_first_tokens": [" x"],
            "xpatch": [" x" if i < right[layer] else " y" for layer in sorted(right)],
        }
        for i in range(10)
    ]
    test = [_row("a", "x", " q", " q", "", [" x" if layer == 0 else " y" for layer in sorted(right)])]
    return {"task": task, "seed": seed, "layers": sorted(right), "val": val, "test": test}


def test_per_task_and_shared_layer_selection_on_constructed_curves():
    # task a peaks at layer 0 (0.6), task b at layer 2 (1.0); their mean peaks at layer 2 (0.7)
    units = [_curves_unit("a", 1, {0: 6, 1: 5, 2: 4}), _curves_unit("b", 1, {0: 0, 1: 5, 2: 10})]
    scores = layer_scores(units, "val")
    assert choose_layers(scores, "paper", "shared") == {"a": 2, "b": 2}
    assert choose_layers(scores, "paper", "per-task") == {"a": 0, "b": 2}
    assert choose_layer(scores, "paper") == 2
    # the per-task layer decides which sweep column is a task's xPatch answer
    shared = split_predictions(units, {"a": 2, "b": 2}, {})
    per_task = split_predictions(units, {"a": 0, "b": 2}, {})
    a = lambda frame: frame[(frame.task == "a") & (frame.method == "xpatch")].paper.tolist()  # noqa: E731
    assert a(shared) == [False] and a(per_task) == [True]
    with pytest.raises(ValueError, match="layer selection"):
        choose_layers(scores, "paper", "best")


def test_a_flat_selection_curve_is_named_where_the_tie_rule_chose_the_layer():
    # task a is flat (0.5 at every layer), task b is not; their mean is not flat
    units = [_curves_unit("a", 1, {0: 5, 1: 5, 2: 5}), _curves_unit("b", 1, {0: 0, 1: 5, 2: 10})]
    scores = layer_scores(units, "val")
    assert flat_selection_curves(scores, "paper", "shared") == {}
    assert flat_selection_curves(scores, "paper", "per-task") == {"a": 0.5}
    both_flat = [_curves_unit("a", 1, {0: 0, 1: 0}), _curves_unit("b", 1, {0: 0, 1: 0})]
    assert flat_selection_curves(layer_scores(both_flat, "val"), "paper", "shared") == {"average": 0.0}
    one_layer = [_curves_unit("a", 1, {4: 0})]  # a single layer swept is no curve
    assert flat_selection_curves(layer_scores(one_layer, "val"), "paper", "shared") == {}


def _val_frame(right: dict[tuple[str, int, int], int], items: int = 12) -> pd.DataFrame:
    """A val-score frame: at ``(task, seed, layer)`` the first ``right[...]`` of ``items`` are right."""
    records = [
        (task, seed, f"v{i}", layer, "paper", i < count)
        for (task, seed, layer), count in right.items()
        for i in range(items)
    ]
    return pd.DataFrame.from_records(records, columns=["task", "seed", "item", "layer", "metric", "correct"])


def test_equal_accuracies_summed_in_another_order_still_tie_to_the_lowest_layer():
    # per-task: 40 of 90 right at both layers, but the seeds' means come to 0.4444444444444444 at
    # layer 21 and 0.4444444444444445 at layer 22
    seeds = {21: (0, 10, 30), 22: (0, 12, 28)}
    one_task = _val_frame(
        {("a", seed, layer): n for layer, ns in seeds.items() for seed, n in enumerate(ns, 1)}, items=30
    )
    assert choose_layers(one_task, "paper", "per-task") == {"a": 21}
    assert flat_selection_curves(one_task, "paper", "per-task") == pytest.approx({"a": 4 / 9})
    # shared: 15 of 36 right at both layers, but the tasks' mean comes to 0.4166666666666666 at
    # layer 21 and 0.41666666666666674 at layer 22
    tasks = {21: (3, 11, 1), 22: (3, 10, 2)}
    three_tasks = _val_frame(
        {(task, 1, layer): n for layer, ns in tasks.items() for task, n in zip("abc", ns, strict=True)}
    )
    assert choose_layers(three_tasks, "paper", "shared") == {"a": 21, "b": 21, "c": 21}
    assert choose_layer(three_tasks, "paper") == 21
    assert flat_selection_curves(three_tasks, "paper", "shared") == pytest.approx({"average": 5 / 12})
    assert select_layer({21: 0.41666666666666663, 22: 0.4166666666666667}) == 21


def test_a_best_value_several_layers_share_is_named_where_the_tie_rule_chose_among_them():
    """Layers 10 and 11 both at 0.12 on validation (layer 11 0.57 on test, 10 0.46): the report
    said nothing, since only a curve flat at every layer was flagged."""
    units = [_curves_unit("a", 1, {9: 2, 10: 5, 11: 5}), _curves_unit("b", 1, {9: 0, 10: 5, 11: 5})]
    scores = layer_scores(units, "val")
    assert choose_layers(scores, "paper", "shared") == {"a": 10, "b": 10}
    assert tied_selection_curves(scores, "paper", "shared") == {"average": [10, 11]}
    assert tied_selection_curves(scores, "paper", "per-task") == {"a": [10, 11], "b": [10, 11]}
    # a flat curve is flagged as flat, not as tied; one best layer is neither
    flat = [_curves_unit("a", 1, {0: 5, 1: 5}), _curves_unit("b", 1, {0: 0, 1: 10})]
    assert tied_selection_curves(layer_scores(flat, "val"), "paper", "per-task") == {}


def test_a_baseline_answering_a_label_longer_than_the_answer_budget_is_held_to_it():
    """Labels longer than --answer-tokens: the model's answers were cut at the budget (no whole
    label), while the majority and label-prior baselines answered whole labels and scored them, so
    xPatch trailed them by a significant difference that was only the budget's."""
    unit = _unit(1)  # b's majority is its label z; the label prior is x, a's label
    right = [("b", "majority"), ("a", "label_prior")]
    within = split_predictions([unit], 1, {}).set_index(["item", "method"])
    assert all(within.loc[key, "whole_label"] and within.loc[key, "exact"] for key in right)
    over = {**unit, "labels_over_budget": ["z", "x"]}
    held = split_predictions([over], 1, {}).set_index(["item", "method"])
    for key in right:
        row = held.loc[key]
        assert not row.whole_label and not row.exact and not row.strict
        assert row.paper  # its first token is written within any budget


def test_the_layer_curves_keep_the_commands_task_order():
    """``val_curve_*.csv`` listed tasks alphabetically (animal_young before food_color for
    ``-t food_color animal_young``), while every other table keeps the command's order."""
    units = [_curves_unit("zebra", 1, {0: 6, 1: 5}), _curves_unit("apple", 1, {0: 0, 1: 5})]
    assert list(layer_curve(layer_scores(units, "val"), "paper").index) == ["zebra", "apple", "average"]
