"""The paper-style tables are arithmetic on per-item predictions: checked on a constructed case."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from helpers.conflict import conflict_rows_of

from taskvec.evaluation.result import RunResult
from taskvec.experiments.conditions import (
    TOP_LABEL_ROW,
    Condition,
    matrix,
    paper_conditions,
    table3_diversity,
    table3_with_std,
)


def _predictions(correct: dict[tuple[str, int, str], list[bool]], whole=None) -> pd.DataFrame:
    """Rows of (task, seed, method) -> per-item correctness, under every metric alike (but
    ``whole_label``, taken from ``whole`` where given). Item i's label is ``L<i>`` (capital has
    one label twice); a right answer is the label, a wrong one ``"w"``."""
    rows = []
    for (task, seed, method), items in correct.items():
        for i, ok in enumerate(items):
            label = f"L{min(i, 2)}" if task == "capital" else f"L{i}"
            rows.append(
                {
                    "task": task,
                    "seed": seed,
                    "item": f"{task}-{i}",
                    "label": label,
                    "method": method,
                    "prediction": label if ok else "w",
                    "paper": ok,
                    "whole_label": (whole or {}).get((task, seed, method), items)[i],
                    "paper_ci": ok,
                    "strict": ok,
                    "exact": ok,
                }
            )
    return pd.DataFrame(rows)


def _result(correct, layer: int = 7) -> RunResult:
    return RunResult(
        folder=None, best_layer=layer, val_scores=pd.DataFrame(), predictions=_predictions(correct)
    )


def _claims_reproduction(text, whole=None) -> SimpleNamespace:
    """What ``claims_beside`` reads of a reproduction: Text ICL -> image and Image ICL -> image in
    ``noto`` from constructed predictions (``_predictions``), no LLM, no transfer."""
    results = {
        Condition("text-icl", "image", "noto"): RunResult(None, 7, pd.DataFrame(), _predictions(text, whole)),
        Condition("image-icl", "image", "noto"): _result(text, layer=3),
    }
    return SimpleNamespace(
        adapter=SimpleNamespace(base_language_model=lambda: None),
        config=SimpleNamespace(styles=["noto"], ensemble_counts=[5, 10]),
        conditions=results,
        transfer={},
        training_style="noto",
        main_condition=lambda style=None: results[Condition("text-icl", "image", style or "noto")],
    )


def _case():
    # two tasks, two seeds; four test items each
    text = {
        ("capital", 1, "no_context"): [False, False, False, True],  # 0.25
        ("capital", 2, "no_context"): [False, False, False, False],  # 0.0
        ("colour", 1, "no_context"): [False, False, False, False],
        ("colour", 2, "no_context"): [False, False, False, False],
        ("capital", 1, "majority"): [True, False, False, False],  # 0.25
        ("capital", 2, "majority"): [True, True, False, False],  # 0.5
        ("colour", 1, "majority"): [True, True, True, True],  # 1.0
        ("colour", 2, "majority"): [False, False, False, False],  # 0.0
        ("capital", 1, "xbase"): [True] * 4,
        ("capital", 2, "xbase"): [True] * 4,
        ("colour", 1, "xbase"): [False] * 4,
        ("colour", 2, "xbase"): [False] * 4,
        ("capital", 1, "xpatch"): [True, True, True, False],
        ("capital", 2, "xpatch"): [True, True, True, False],
        ("colour", 1, "xpatch"): [True, False, False, False],
        ("colour", 2, "xpatch"): [True, True, True, False],
    }
    image = {key: [not ok for ok in value] for key, value in text.items()}
    return {
        Condition("text-icl", "image", "noto"): _result(text, layer=7),
        Condition("image-icl", "image", "noto"): _result(image, layer=3),
    }


def test_table3_rows_come_from_the_right_condition_and_method():
    mean, std = table3_with_std(_case(), "noto", "paper")
    assert mean.loc["No Context", "capital"] == pytest.approx(0.125)
    assert std.loc["No Context", "capital"] == pytest.approx(0.125)
    assert mean.loc["Majority", "capital"] == pytest.approx(0.375)
    assert mean.loc["Majority", "colour"] == pytest.approx(0.5)
    # the average over tasks is taken per seed first: seed 1 (0.25 + 1.0) / 2, seed 2 (0.5 + 0) / 2
    assert mean.loc["Majority", "average"] == pytest.approx((0.625 + 0.25) / 2)
    assert mean.loc["Text ICL xBase", "capital"] == 1.0
    assert mean.loc["Image ICL Base", "capital"] == 0.0  # the image condition's own xBase
    assert mean.loc["Text ICL xPatch", "colour"] == pytest.approx(0.5)
    assert mean.loc["Image ICL Patch", "colour"] == pytest.approx(0.5)


def test_matrix_names_cross_modal_rows_and_keeps_the_chosen_layer():
    table = matrix(_case(), "paper")
    assert table.loc[("Text ICL -> image (noto)", "xPatch"), "layer"] == 7
    assert table.loc[("Image ICL (noto) -> image (noto)", "Patch"), "layer"] == 3


def test_every_condition_of_the_matrix_is_run_once_per_style():
    conditions = paper_conditions(["noto", "openmoji"])
    assert len(conditions) == len(set(conditions)) == 10
    image = [c for c in conditions if c.query == "image" or c.spec == "image-icl"]
    assert {c.style for c in image} == {"noto", "openmoji"}
    assert all(c.style is None for c in conditions if c not in image)


def test_table3_has_the_label_prior_and_the_splits_top_label_share_for_reference():
    case = _case()
    text = case[Condition("text-icl", "image", "noto")]
    rows = [
        {**row, "method": "label_prior", "prediction": "L2", "paper": row["label"] == "L2"}
        for row in text.predictions[text.predictions.method == "xbase"].to_dict("records")
    ]
    text.predictions = pd.concat([text.predictions, pd.DataFrame(rows)], ignore_index=True)
    mean, std = table3_with_std(case, "noto", "paper")
    assert mean.loc["Label prior", "capital"] == pytest.approx(0.5)  # L2 is items 2 and 3
    assert mean.loc["Label prior", "colour"] == pytest.approx(0.25)  # item 2 alone
    assert mean.loc[TOP_LABEL_ROW, "capital"] == pytest.approx(0.5)
    assert mean.loc[TOP_LABEL_ROW, "colour"] == pytest.approx(0.25)
    assert std.loc[TOP_LABEL_ROW].eq(0).all()


def test_table3_by_the_whole_label_metric_and_its_diversity_flags():
    text = {
        ("capital", 1, "xpatch"): [True, True, True, True],
        ("colour", 1, "xpatch"): [True, False, False, False],
        ("capital", 1, "xbase"): [False] * 4,
        ("colour", 1, "xbase"): [False] * 4,
    }
    whole = {("capital", 1, "xpatch"): [True, False, False, False]}
    results = {
        Condition("text-icl", "image", "noto"): RunResult(None, 7, pd.DataFrame(), _predictions(text, whole)),
        Condition("image-icl", "image", "noto"): _result(text, layer=3),
    }
    assert table3_with_std(results, "noto", "paper")[0].loc["Text ICL xPatch", "capital"] == 1.0
    assert table3_with_std(results, "noto", "whole_label")[0].loc["Text ICL xPatch", "capital"] == 0.25
    diversity = table3_diversity(results, "noto")
    # xBase answers "w" for every item: collapsed; xPatch on capital answers L0 L1 L2 L2: not
    assert diversity.loc[("Text ICL xBase", "collapsed"), "capital"] == 1.0
    assert diversity.loc[("Text ICL xPatch", "collapsed"), "capital"] == 0.0
    assert diversity.loc[("Text ICL xPatch", "top_share"), "capital"] == pytest.approx(0.5)
    assert diversity.loc[("Text ICL xPatch", "distinct"), "capital"] == pytest.approx(0.75)


def test_the_claims_check_the_label_prior_and_collapse_and_stand_whole_label_beside_paper():

    from taskvec.report.reproduce import claims_beside

    text = {
        ("capital", 1, "no_context"): [False] * 4,
        ("capital", 1, "xbase"): [False] * 4,
        ("capital", 1, "label_prior"): [False, False, True, True],  # L2 for every item
        ("capital", 1, "xpatch"): [True, True, True, False],
    }
    whole = {("capital", 1, "xpatch"): [True, False, False, False]}
    table = claims_beside(_claims_reproduction(text, whole), None, None).set_index("claim")
    # "capital" is none of the paper's tasks: no published figure stands beside ours
    assert table.loc["Text ICL xPatch beats Text ICL xBase on image queries", "paper"] == (
        "not reported for these tasks"
    )
    prior = table.loc["Text ICL xPatch beats the label prior (the most frequent val label for every item)"]
    # 3 right answers against 2 on four items: the verdict stands, said to rest on noise
    assert prior["ours"] == "0.75 vs 0.50 (difference +0.25, 95% interval -0.69 to +1.19 over 4 items)"
    assert prior["held"] == "yes, within noise"
    assert prior["ours (whole_label)"].startswith("0.25 vs 0.50 (difference -0.25")
    assert prior["held (whole_label)"] == "no, within noise"
    collapse = table.loc["Text ICL xPatch's answers on image queries do not collapse onto one answer"]
    # xPatch answers L0 L1 L2 w: no collapse; by no metric (its whole_label cells say so)
    assert collapse["held"] == "yes" and collapse["held (whole_label)"] == "-"


def test_the_claims_set_the_papers_figures_over_the_same_tasks_as_ours():
    from taskvec.experiments import paper
    from taskvec.report.reproduce.claims import paper_figures

    idefics2 = paper.TABLE3["Idefics2"]
    rows = [idefics2["Text ICL xPatch"], idefics2["Text ICL xBase"]]
    assert paper_figures(rows, list(paper.TASK_COLUMNS), "Idefics2") == "0.51 vs 0.18 (Idefics2)"
    # two of the six: the mean of the paper's values for them (0.40, 0.48 and 0.03, 0.41)
    two = ["country_currency", "animal_latin", "average"]
    assert paper_figures(rows, two, "Idefics2") == "0.44 vs 0.22 (Idefics2, mean over the same tasks)"
    assert paper_figures(rows, ["capital", "average"]) == "not reported for these tasks"


def test_the_collapse_claim_names_a_task_the_rule_cannot_judge():
    """Where the split's top label is over half of it, no answer can reach twice its share: the
    claim said "no task" collapsed while one answered the same label for most items."""

    from taskvec.evaluation.scoring import collapse_undetectable
    from taskvec.report.reproduce import claims_beside

    assert collapse_undetectable(0.6) and not collapse_undetectable(0.5)
    # capital's labels L0 L1 L2 L2 L2: L2 is 0.6 of the split; xPatch answers w w L2 L2 L2
    text = {
        ("capital", 1, "no_context"): [False] * 5,
        ("capital", 1, "xbase"): [False] * 5,
        ("capital", 1, "label_prior"): [False, False, True, True, True],
        ("capital", 1, "xpatch"): [False, False, True, True, True],
    }
    table = claims_beside(_claims_reproduction(text), None, None).set_index("claim")
    collapse = table.loc["Text ICL xPatch's answers on image queries do not collapse onto one answer"]
    assert "the rule cannot judge capital (top answer 0.60, its split's top label 0.60)" in collapse["ours"]
    # its only task not judged: no verdict, not "yes"
    assert collapse["held"] == "not judged"


def test_the_collapse_claim_held_says_on_how_many_tasks_the_rule_judged():
    """ "yes" while one of two tasks could not be judged read as a verdict on both."""
    from taskvec.report.reproduce import claims_beside

    text = {
        ("capital", 1, "no_context"): [False] * 5,
        ("capital", 1, "xbase"): [False] * 5,
        ("capital", 1, "label_prior"): [False, False, True, True, True],
        ("capital", 1, "xpatch"): [False, False, True, True, True],
        ("currency", 1, "no_context"): [False] * 5,
        ("currency", 1, "xbase"): [False] * 5,
        ("currency", 1, "label_prior"): [False] * 5,
        ("currency", 1, "xpatch"): [True] * 5,
    }
    table = claims_beside(_claims_reproduction(text), None, None).set_index("claim")
    collapse = table.loc["Text ICL xPatch's answers on image queries do not collapse onto one answer"]
    assert collapse["held"] == "yes, on 1 of 2 tasks judged"


def test_a_claim_of_at_least_as_well_is_not_judged_where_neither_side_beats_no_context():
    """ "Text-ICL vectors patch image queries at least as well as image-ICL vectors: 0.00 vs 0.00,
    yes" on a model where nothing works: two zeros compare nothing."""
    from taskvec.report.reproduce import claims_beside

    nothing = {
        ("capital", 1, method): [False] * 4 for method in ("no_context", "xbase", "label_prior", "xpatch")
    }
    table = claims_beside(_claims_reproduction(nothing), None, None).set_index("claim")
    claim = table.loc["Text-ICL vectors patch image queries at least as well as image-ICL vectors"]
    assert (claim["ours"], claim["held"]) == ("0.00 vs 0.00", "not judged")
    assert claim["note"] == "neither side above No Context (0.00): nothing to compare"
    working = {**nothing, ("capital", 1, "xpatch"): [True] * 4}
    claim = claims_beside(_claims_reproduction(working), None, None).set_index("claim").loc[claim.name]
    assert claim["held"] == "yes" and claim["note"] == ""


def test_a_claim_on_many_items_holds_plainly_and_the_same_gap_on_few_within_noise():
    """ "held: yes" at 3 right answers against 2 (a reproduce --quick run) read as a finding: the
    verdict says where the items cannot tell the gap from the claim's threshold."""
    from taskvec.report.reproduce import claims_beside

    def case(items: int) -> dict:
        right = [True] * (items // 2) + [False] * (items - items // 2)
        return {
            ("capital", 1, "no_context"): [False] * items,
            ("capital", 1, "xbase"): [False] * items,
            ("capital", 1, "label_prior"): [False] * items,
            ("capital", 1, "xpatch"): right,
        }

    claim = "Text ICL xPatch beats Text ICL xBase on image queries"
    few = claims_beside(_claims_reproduction(case(4)), None, None).set_index("claim").loc[claim]
    many = claims_beside(_claims_reproduction(case(200)), None, None).set_index("claim").loc[claim]
    assert few["held"] == "yes, within noise" and many["held"] == "yes"
    assert many["ours"] == "0.50 vs 0.00 (difference +0.50, 95% interval +0.43 to +0.57 over 200 items)"
    # "far above No Context" asks for 0.1 more: at 0.50 over 200 items that is clear
    far = claims_beside(_claims_reproduction(case(200)), None, None).set_index("claim")
    assert far.loc["Text ICL xPatch is far above No Context", "held"] == "yes"
    # equal sides, every item alike: "at least as well" holds, and nothing is left to noise
    equal = far.loc["Text-ICL vectors patch image queries at least as well as image-ICL vectors"]
    assert equal["held"] == "yes"


CONFLICT_CLAIM = "A patched task overrides a conflicting instruction"


def _claim(conflict: pd.DataFrame) -> pd.Series:
    from taskvec.report.reproduce import claims_beside

    nothing = {("capital", 1, m): [False] * 4 for m in ("no_context", "xbase", "label_prior", "xpatch")}
    return claims_beside(_claims_reproduction(nothing), None, conflict).set_index("claim").loc[CONFLICT_CLAIM]


def test_the_conflict_claim_on_one_item_is_within_noise_and_on_many_it_is_settled():
    """ "patched task 1.00 ... yes" stood on the one item a quick run's pair shared."""
    one = _claim(conflict_rows_of([True], [False]))
    assert one["held"] == "yes, within noise"
    assert one["ours"].startswith(
        "patched task 1.00, 95% interval 0.21 to 1.00 over 1 items (control follows"
    )
    assert one["held (whole_label)"] == "no, within noise"  # judged by its own metric, not "-"
    many = _claim(conflict_rows_of([True] * 90 + [False] * 10, [True] * 20 + [False] * 80))
    assert (many["held"], many["held (whole_label)"]) == ("yes", "no")
    assert many["ours"].startswith("patched task 0.90, 95% interval 0.83 to 0.94 over 100 items (control")


ENSEMBLE_CLAIM = "Instruction + exemplar ensemble beats exemplars alone at the smallest n"


def _ensemble(ensembled: str, exemplars: str, seed: int = 1) -> pd.DataFrame:
    """Fig. 8's rows of one task and seed at n = 5 (the claim's), each item's mark given."""
    rows = [
        {"kind": kind, "correct": marks, "accuracy": marks.count("x") / len(marks)}
        for kind, marks in (("ensemble", ensembled), ("exemplars", exemplars), ("instruction", exemplars))
    ]
    return pd.DataFrame(rows).assign(task="capital", seed=seed, n=5, style="noto")


def test_the_ensemble_claim_compares_the_two_vectors_item_by_item():
    """ "0.29 vs 0.35: no" had no interval: on a few items the gap is noise, on many it is not."""
    from taskvec.report.reproduce import claims_beside

    nothing = {("capital", 1, m): [False] * 4 for m in ("no_context", "xbase", "label_prior", "xpatch")}
    reproduction = _claims_reproduction(nothing)
    few = claims_beside(reproduction, _ensemble("x...", "xx.."), None).set_index("claim").loc[ENSEMBLE_CLAIM]
    assert few["ours"] == "0.25 vs 0.50 (difference -0.25, 95% interval -0.74 to +0.24 over 4 items)"
    assert few["held"] == "no, within noise" and few["held (whole_label)"] == "-"
    many = claims_beside(reproduction, _ensemble("x" * 20 + "." * 80, "x" * 50 + "." * 50), None)
    assert many.set_index("claim").loc[ENSEMBLE_CLAIM, "held"] == "no"


def test_two_sides_equal_but_for_the_order_of_their_sums_do_not_make_a_claim_hold():
    """Three seeds whose ensemble and exemplar vectors are right as often, on other items: the
    item-by-item mean is 8e-18, not 0, and "beats" held ("0.33 vs 0.33 ... yes")."""
    from taskvec.report.reproduce import claims_beside

    nothing = {("capital", 1, m): [False] * 4 for m in ("no_context", "xbase", "label_prior", "xpatch")}
    seeds = [("x.x....", "x...x.."), ("xx.x..x", "...xxxx"), ("...x...", "......x")]
    ensemble = pd.concat([_ensemble(*marks, seed=seed) for seed, marks in enumerate(seeds, 1)])
    claim = (
        claims_beside(_claims_reproduction(nothing), ensemble, None).set_index("claim").loc[ENSEMBLE_CLAIM]
    )
    assert claim["ours"].startswith("0.33 vs 0.33 (difference +0.00")
    assert claim["held"] == "no, within noise"
