"""Scoring a generated answer against a label and its aliases.

- ``paper``: the paper's rule, kept for comparability: the first generated token, stripped,
  counts when it and the label are non-empty and one starts with the other.
- ``paper_ci``: the same, case-insensitive (the paper's Fig. 8 setting).
- ``strict``: the first token, stripped, must *be* the label's own first token (as the model's
  tokenizer splits the label, with or without a leading space), case-insensitive. A lone " B" no
  longer passes for "Berlin", "Bangkok" and "Brussels" alike.
- ``exact``: the whole greedy answer (up to the newline) equals the label or an alias,
  case-insensitive, ignoring surrounding punctuation. Needs multi-token generation.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence

FIRST_TOKEN_METRICS = ("paper", "paper_ci", "strict")
METRICS = (*FIRST_TOKEN_METRICS, "exact")


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
    """The first token equals one of the label's own first tokens (stripped, case-insensitive)."""
    pred = prediction.strip().lower()
    return bool(pred) and pred in {t.strip().lower() for t in label_first_tokens if t.strip()}


def _normalise(text: str) -> str:
    return text.strip().strip(string.punctuation + " ").strip().lower()


def exact_match(answer: str, answers: Sequence[str]) -> bool:
    """The full answer line equals the label or an alias."""
    got = _normalise(answer.split("\n", 1)[0])
    return bool(got) and got in {_normalise(a) for a in answers}


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
