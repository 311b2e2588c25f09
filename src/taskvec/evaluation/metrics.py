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
  is followed by the answer's end or what cannot go on a word or number (not a letter or digit,
  nor a point or comma before a digit), case-insensitive: ``" Astana Kazakhstan."`` counts for
  Astana, ``" Astanaville"``, ``" Kinshash"``, ``" 10"`` for 1 and ``" 2"`` for -2 do not, nor does
  a lone letter or an echo of the item unless the label is that very word. A hyphen between
  two letters reads as a space (``" Port-of-Spain"`` counts for Port of Spain, ``" Nur Sultan"``
  for Nur-Sultan; ``"-2"`` keeps its sign). Needs multi-token
  generation; a label longer than the answer budget (``answer_tokens``) cannot be credited.
- ``exact``: the whole greedy answer (up to the newline) equals the label or an alias,
  case-insensitive, ignoring surrounding quotes, brackets and sentence punctuation (never a sign
  or currency symbol: ``" 3"`` is not ``-3``), a hyphen between letters read as a space. Refuses a
  right label that the model goes on after (``" Astana Kazakhstan."``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence

FIRST_TOKEN_METRICS = ("paper", "paper_ci", "strict")
METRICS = ("paper", "whole_label", "paper_ci", "strict", "exact")
#: one line per metric, for tables and reports
METRIC_NOTES = {
    "paper": "the paper's first-token prefix rule (comparable to its tables)",
    "whole_label": "the greedy answer begins with the whole label or an alias, then ends or goes on with "
    "no letter or digit",
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


#: what may wrap or end an answer without changing what it names: quotes, brackets, emphasis and
#: sentence punctuation (``"Paris".``, ``**Paris**``); never a sign or a currency (``-3`` is not
#: ``3``, ``$5`` is not ``5``)
_WRAPPING = string.whitespace + "\"'`*_()[]{}.,;:!?\u201c\u201d\u2018\u2019\u00ab\u00bb"
_OPENING = string.whitespace + "\"'`*_([{\u201c\u2018\u00ab"


#: a hyphen (or its Unicode kin) with a letter on each side: the place-name spellings a model may
#: write either way (Port-of-Spain, Porto Novo); a sign before a digit is never one
_HYPHEN_IN_WORDS = re.compile(r"(?<=[^\W\d_])[-\u2010\u2011](?=[^\W\d_])")


def _spelled(text: str) -> str:
    """``text`` lower-cased, a hyphen between letters read as a space."""
    return _HYPHEN_IN_WORDS.sub(" ", text.lower())


def whole_label_match(answer: str, answers: Sequence[str]) -> bool:
    """The answer begins with the label or an alias, ended by the answer's end or a character
    that cannot go on a word or a number (not a letter or digit, nor a point or comma before a
    digit).

    Case-insensitive; the answer's first line counts, and quotes, brackets and emphasis before it
    and around the label are ignored, a sign or currency symbol is not::

        >>> whole_label_match(" Astana Kazakhstan.", ["Astana"])
        True
        >>> whole_label_match(" Astanaville", ["Astana"]), whole_label_match(" Kinshash", ["Kinshasa"])
        (False, False)
        >>> whole_label_match(" 10", ["1"]), whole_label_match(" 3.5", ["3"]), whole_label_match(" 2", ["-2"])
        (False, False, False)
    """
    line = _spelled(answer.split("\n", 1)[0])
    shown = {line.lstrip(string.whitespace), line.lstrip(_OPENING)}  # "(a)" for "(a)", "Paris" for "*Paris"
    for candidate in answers:
        label = _spelled(candidate.strip(_WRAPPING) or candidate.strip())
        for got in shown:
            if label and got.startswith(label) and _ends_there(got[len(label) :]):
                return True
    return False


def _ends_there(rest: str) -> bool:
    """Whether a label followed by ``rest`` ends there: ``rest`` is empty or starts with what
    cannot go on a word or number (``" Kazakhstan"``, ``"."``, ``")"``; not ``"ville"``,
    ``"0"``, ``".5"``, ``",000"``)."""
    if not rest:
        return True
    if rest[0].isalnum():
        return False
    return not (rest[0] in ".," and rest[1:2].isdigit())


def _normalise(text: str) -> str:
    return _spelled(text.strip(_WRAPPING))


def exact_match(answer: str, answers: Sequence[str]) -> bool:
    """The full answer line equals the label or an alias, wrapping aside (``_WRAPPING``)."""
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
