"""How answers are read and scored: where a generated answer's line ends, the case-insensitive
paper metric, answer diversity that counts one answer in any case once, and the xPatch column a
test prediction is read from when a run swept only some layers."""

from __future__ import annotations

import pandas as pd
import pytest

from taskvec.evaluation.metrics import first_token_scores
from taskvec.evaluation.scoring import answer_diversity, split_predictions
from taskvec.patching.patch import answer_line_end


@pytest.mark.parametrize(
    ("text", "end"),
    [
        (" \nParis", None),  # a space then a newline open the answer: its line has not ended
        (" \nParis\nQ:", 7),
        ("\n \n Paris.\nQ", 10),
        (" \n", None),
    ],
)
def test_spaces_and_newlines_before_an_answer_do_not_end_its_line(text, end):
    """``answer_line_end``: the first newline after the answer's first character that is neither
    a newline nor a space; a space before a newline opens the answer as a newline does."""
    assert answer_line_end(text) == end


def test_paper_ci_ignores_case_and_paper_does_not():
    """``paper_ci`` is the paper's rule case-insensitive (its Fig. 8): " paris" for Paris counts
    there, not under the case-sensitive ``paper``."""

    def first_tokens_of(text: str) -> list[str]:
        return [text[:1], " "]

    lower = first_token_scores(" paris", ["Paris"], first_tokens_of)
    assert (lower["paper"], lower["paper_ci"]) == (False, True)
    upper = first_token_scores(" PAR", ["paris"], first_tokens_of)
    assert (upper["paper"], upper["paper_ci"]) == (False, True)
    assert first_token_scores(" Paris", ["Paris"], first_tokens_of)["paper_ci"]
    assert not first_token_scores(" rome", ["Paris"], first_tokens_of)["paper_ci"]


def test_answer_diversity_counts_one_answer_in_any_case_once():
    """ " Paris", " paris" and "PARIS" are one answer, also where a blank first token leaves the
    whole answer's first word to stand for it: a method answering Paris for five of six items
    has collapsed onto it whatever the case."""
    predictions = pd.DataFrame(
        {
            "task": "capitals",
            "seed": 1,
            "method": "xpatch",
            "item": ["i0", "i1", "i2", "i3", "i4", "i5"],
            "label": ["Paris", "Rome", "Oslo", "Lima", "Bern", "Kyiv"],
            "prediction": [" Paris", " paris", "PARIS", "\n", " ", " Rome"],
            "answer": [" Paris", " paris", "PARIS", "\nParis is", " PARIS", " Rome"],
        }
    )
    row = answer_diversity(predictions).loc[("capitals", "xpatch")]
    assert row["distinct"] == 2 / 6
    assert row["top_share"] == 5 / 6
    assert row["top_answer"] == "paris"


def _row(item: str, label: str, xpatch: list[str]) -> dict:
    return {
        "id": item,
        "input": f"input {item}",
        "label": label,
        "answers": [label],
        "label_first_tokens": [label[:1], " "],
        "demos": [],
        "majority": label,
        "no_context": "?",
        "no_context_answer": "?",
        "xbase": label[:1],
        "xbase_answer": label,
        "xpatch": xpatch,
    }


@pytest.mark.parametrize(("layers", "chosen"), [([3, 5], 5), ([3, 5], 3), ([1, 2], 1), ([1, 2], 2)])
def test_a_test_prediction_is_read_from_the_chosen_layers_position_in_the_sweep(layers, chosen):
    """A unit's ``xpatch`` list has one answer per swept layer, in the order of its ``layers``
    (e.g. [3, 5]): the chosen layer's answer is at the layer's position there, not at the index
    its number names."""
    answers = {layer: f"at {layer}" for layer in layers}
    unit = {
        "task": "capitals",
        "seed": 1,
        "layers": layers,
        "test_layers": layers,
        "val": [_row("v0", "Paris", [answers[layer] for layer in layers])],
        "test": [_row("t0", "Rome", [answers[layer] for layer in layers])],
    }
    full_answers = {("capitals", 1): [("unused first token", "whole answer")]}
    predictions = split_predictions([unit], chosen, full_answers)
    xpatch = predictions[predictions.method == "xpatch"].iloc[0]
    assert xpatch["prediction"] == answers[chosen]
    assert xpatch["answer"] == "whole answer"
