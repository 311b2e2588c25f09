"""Token sets for the three logit-lens phases: input, task and answer tokens of a task.

The words are data (``data/token_sets.json``, or a file of the same layout), so a user can change
what counts as a "task" token without touching code. What is derived from the task itself is
derived here: the query prompts' own tokens join the input set, the labels' first tokens the
answer set. A token claimed by two phases says nothing about which phase a layer is in, so it is
dropped from both (and reported as ambiguous).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from taskvec.errors import TaskFileError
from taskvec.models.adapter import ModelAdapter
from taskvec.prompts.template import PromptTemplate
from taskvec.tasks.task import Task

PHASES: tuple[str, ...] = ("input", "task", "answer")

#: words too common to name a task, ignored when a task's words come from its instruction
_STOPWORDS = frozenset(
    {"the", "a", "an", "of", "in", "on", "to", "for", "and", "or", "with", "from", "that", "this"}
    | {"what", "which", "its", "their", "is", "are", "be", "as", "by", "name", "term", "word"}
    | {"last", "first", "official"}
)


@dataclass(frozen=True)
class TokenSets:
    """Token ids per phase for one task (disjoint), plus the ids dropped as ambiguous."""

    task: str
    ids: Mapping[str, tuple[int, ...]]
    ambiguous: tuple[int, ...] = ()

    def frame(self, adapter: ModelAdapter) -> pd.DataFrame:
        """One row per (phase, token): what a reader checks when a curve looks odd."""
        rows = [
            {"task": self.task, "phase": phase, "token_id": t, "token": adapter.decode([t])}
            for phase in (*PHASES, "ambiguous")
            for t in self.ids.get(phase, self.ambiguous)
        ]
        return pd.DataFrame(rows, columns=["task", "phase", "token_id", "token"])


def default_words_path() -> Path:
    return Path(str(resources.files("taskvec.analysis") / "data" / "token_sets.json"))


def load_words(path: str | Path | None = None) -> dict[str, dict[str, list[str]]]:
    """The per-task word lists: ``{task: {"input": [...], "task": [...], "answer": [...]}}``."""
    path = Path(path) if path is not None else default_words_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise TaskFileError(f"token-set file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise TaskFileError(f"token-set file {path} is not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise TaskFileError(
            f"{path}: expected an object of task name -> {{{', '.join(PHASES)}: word lists}}, "
            f"not {type(raw).__name__}"
        )
    words: dict[str, dict[str, list[str]]] = {}
    for task, entry in raw.items():
        if task.startswith("_"):
            continue
        if not isinstance(entry, dict) or not set(entry) <= set(PHASES):
            raise TaskFileError(f"{path}: task {task!r} must map some of {list(PHASES)} to word lists")
        for phase, values in entry.items():
            if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
                raise TaskFileError(f"{path}: {task}.{phase} must be a list of non-blank strings")
        words[task] = {phase: list(entry.get(phase, [])) for phase in PHASES}
    return words


def check_words_name_tasks(
    words: Mapping[str, Mapping[str, list[str]]], tasks: Sequence[Task], path: str | Path
) -> None:
    """Refuse a token-set file with entries that name no task of the analysis while one of its
    tasks has none (a misspelt name: its words were left out in silence, and the task fell back
    to its instruction's words); entries for other tasks beside every task's own are fine."""
    names = [task.name for task in tasks]
    stray = [name for name in words if name not in names]
    missing = [name for name in names if name not in words]
    if stray and missing:
        raise TaskFileError(
            f"{path}: its entries {', '.join(map(repr, stray))} name no task of this analysis, and "
            f"{', '.join(map(repr, missing))} has none; name the entries as the tasks are named (a task "
            "without an entry uses its instruction's words)"
        )


def instruction_words(task: Task) -> list[str]:
    """Fallback task words: the instruction's content words that are not one of the inputs."""
    inputs = {item.input.lower() for item in (*task.val, *task.test)}
    found = re.findall(r"[A-Za-z]+", task.instruction)
    return [w for w in found if len(w) > 2 and w.lower() not in _STOPWORDS and w.lower() not in inputs]


def word_token_ids(adapter: ModelAdapter, words: Iterable[str], cases: bool = True) -> set[int]:
    """First token of each word with and without a leading space; with ``cases`` also lower-case
    and capitalised (for listed words; names taken from the data keep their own spelling, since
    "france" splits into pieces like " fr" that say nothing about the input)."""
    ids: set[int] = set()
    for word in words:
        word = word.strip()
        forms = {word, word.lower(), word[:1].upper() + word[1:]} if cases else {word}
        for form in forms:
            for variant in (form, " " + form):
                tokens = adapter.text_token_ids(variant)
                if tokens:
                    ids.add(tokens[0])
    return ids


def _has_word_character(adapter: ModelAdapter, token_id: int) -> bool:
    return any(ch.isalnum() for ch in adapter.decode([token_id]))


def token_sets(
    adapter: ModelAdapter,
    task: Task,
    template: PromptTemplate,
    words: Mapping[str, Mapping[str, list[str]]] | None = None,
) -> TokenSets:
    """The input / task / answer token ids of ``task`` under ``adapter``'s tokenizer.

    input: every token of the task's text query prompts (``Q:France\\nA:``: the format and the
    query) plus the input words; task: the task words (the instruction's words if the file has
    none); answer: the first tokens of every label and alias plus the answer words. Tokens with no
    letter or digit are kept only in the input set, where the format tokens belong.
    """
    words = load_words() if words is None else words
    listed = words.get(task.name, {})
    items = (*task.val, *task.test)
    input_ids = {t for item in items for t in adapter.text_token_ids("".join(template.query(item.input)))}
    input_ids |= word_token_ids(adapter, [item.input for item in items], cases=False)
    input_ids |= word_token_ids(adapter, listed.get("input", []))
    task_words = listed.get("task") or instruction_words(task)
    task_ids = {t for t in word_token_ids(adapter, task_words) if _has_word_character(adapter, t)}
    answers = [answer for item in items for answer in item.answers]
    answer_ids = word_token_ids(adapter, answers, cases=False)
    answer_ids |= word_token_ids(adapter, listed.get("answer", []))
    answer_ids = {t for t in answer_ids if _has_word_character(adapter, t)}
    claimed = {"input": input_ids, "task": task_ids, "answer": answer_ids}
    ambiguous = set()
    for phase, ids in claimed.items():
        for other, other_ids in claimed.items():
            if other != phase:
                ambiguous |= ids & other_ids
    disjoint = {phase: tuple(sorted(ids - ambiguous)) for phase, ids in claimed.items()}
    return TokenSets(task.name, disjoint, tuple(sorted(ambiguous)))
