"""Scoring a generated answer against a label and its aliases.

What each metric credits (docs/metrics.md has examples from real runs):

- ``paper``: the paper's rule, kept for comparability: the first generated token, stripped,
  counts when it and the label are non-empty and one starts with the other. A lone ``" S"``
  passes for Santiago and Sarajevo alike, and an answer that only echoes the item passes when
  the label starts like it (Djibouti -> Djibouti, Mexico -> ``" Mexico"`` for Mexico City).
- ``paper_ci``: the same, case-insensitive (the paper's Fig. 8 setting).
- ``strict``: the first token, stripped, must *be* one of the label's own first tokens (as the
  model's tokenizer splits the label or an alias, with and without a leading space),
  case-insensitive. It refuses a letter that the tokenizer never starts the label with (``" B"``
  for a label tokenised ``" Berlin"``), but where the tokenizer splits the label after its first
  letter (SmolLM2 under the paper template: ``"S" + "antiago"``), that letter *is* the label's first
  token and strict credits it. It credits echoes as ``paper`` does (``" Mexico"`` is Mexico
  City's first token).
- ``whole_label``: the greedy answer, stripped, begins with the label or an alias, and the label
  is followed by the answer's end or a non-letter, case-insensitive: ``" Astana Kazakhstan."``
  counts for Astana, ``" Astanaville"`` and ``" Kinshash"`` do not, nor does a lone letter or an
  echo of the item unless the label is that very word. Needs multi-token generation; a label longer
  than the answer budget (``answer_tokens``) cannot be credited.
- ``exact``: the whole greedy answer (up to the newline) equals the label or an alias,
  case-insensitive, ignoring surrounding punctuation. Refuses a right label that the model goes
  on after (``" Astana Kazakhstan."``).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence

FIRST_TOKEN_METRICS = ("paper", "paper_ci", "strict")
METRICS = ("paper", "whole_label", "paper_ci", "strict", "exact")
#: one line per metric, for tables and reports
METRIC_NOTES = {
    "paper": "the paper's first-token prefix rule (comparable to its tables)",
    "whole_label": "the greedy answer begins with the whole label or an alias, then ends or a non-letter",
    "paper_ci": "the paper's rule, case-insensitive",
    "strict": "the first token is one of the label's own first tokens, even a lone letter where the "
    "tokenizer starts the label with it",
    "exact": "the whole greedy answer line equals the label or an alias",
}


def paper_match(prediction: str, answers: Sequence[str], case_sensitive: bool = True) -> bool:
    """The paper's first-token prefix rule (either string may be the prefix of the other)."""
    pred = prediction.strip()
    if not case_sensitive:
        pred = pred.lower()
    for answer in answers:
        label = answer.strip() if case_sensitive else answer.strip().lower()
        if pred and label and (pred.startswith(label) or label.startswith(pred)):
            return True
    return False


def strict_match(prediction: str, label_first_tokens: Sequence[str]) -> bool:
    """The first token equals one of the label's own first tokens (stripped, case-insensitive).
    A token that decodes to part of a character ('\ufffd': one byte of a Greek, Cyrillic or CJK
    letter) matches nothing: every such label would start with it, whatever the model meant."""
    pred = prediction.strip().lower()
    if "\ufffd" in pred:
        return False
    return bool(pred) and pred in {t.strip().lower() for t in label_first_tokens if t.strip()}


_EDGE = string.punctuation + string.whitespace


def whole_label_match(answer: str, answers: Sequence[str]) -> bool:
    """The answer begins with the label or an alias, ended by the answer's end or a non-letter.

    Case-insensitive; the answer's first line counts, and whitespace and punctuation before it
    and around the label are ignored::

        >>> whole_label_match(" Astana Kazakhstan.", ["Astana"])
        True
        >>> whole_label_match(" Astanaville", ["Astana"]), whole_label_match(" Kinshash", ["Kinshasa"])
        (False, False)
    """
    got = answer.split("\n", 1)[0].lstrip(_EDGE).lower()
    for candidate in answers:
        label = candidate.strip(_EDGE).lower()
        if label and got.startswith(label):
            rest = got[len(label) :]
            if not rest or not rest[0].isalpha():
                return True
    return False


def _normalise(text: str) -> str:
    return text.strip().strip(string.punctuation + " ").strip().lower()


def exact_match(answer: str, answers: Sequence[str]) -> bool:
    """The full answer line equals the label or an alias."""
    got = _normalise(answer.split("\n", 1)[0])
    return bool(got) and got in {_normalise(a) for a in answers}


def answer_scores(answer: str, answers: Sequence[str]) -> dict[str, bool]:
    """The metrics of a whole greedy answer, ``whole_label`` and ``exact`` (test split only: the
    layer sweeps read first tokens)."""
    return {"whole_label": whole_label_match(answer, answers), "exact": exact_match(answer, answers)}


def first_token_scores(
    prediction: str, answers: Sequence[str], first_tokens_of: Callable[[str], list[str]]
) -> dict[str, bool]:
    """All first-token metrics for one prediction. ``answers`` is the label then its aliases;
    ``first_tokens_of(text)`` lists a text's possible first tokens under the model's tokenizer."""
    label_tokens = [t for answer in answers for t in first_tokens_of(answer)]
    label = answers[:1]  # the paper scores against the label alone
    return {
        "paper": paper_match(prediction, label, case_sensitive=True),
        "paper_ci": paper_match(prediction, label, case_sensitive=False),
        "strict": strict_match(prediction, label_tokens),
    }
