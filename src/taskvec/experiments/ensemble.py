"""Instructions and ensembling (the paper's Fig. 8).

An exemplar vector "from n examples" averages n / k task vectors of the run's k-shot prompts
(k = ``n_examples``, 5 in the paper), drawn at random from the validation prompts; the
instruction vector is the last token of the instruction alone; the ensemble is the mean of the
two. All are patched at one layer into the test queries and scored case-insensitively, as in
the paper's figure.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pandas as pd
import torch

from taskvec.errors import ConfigError
from taskvec.evaluation.metrics import first_token_scores
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts, check_instruction_ends_at_delimiter
from taskvec.models.adapter import ModelAdapter
from taskvec.models.batching import OnProgress
from taskvec.models.shared_work import SharedWork
from taskvec.patching.sweep import sweep
from taskvec.tasks.task import Task
from taskvec.vectors.extract import last_token_states


def check_ensemble_counts(task: Task, n_examples: int, counts: Sequence[int]) -> None:
    """Each count is whole prompts of ``n_examples`` demonstrations, no more than the task's val
    split gives (one prompt per item): a count beyond them averaged every prompt, and one between
    two multiples averaged fewer examples than it says, under its own label, silently."""
    for n in counts:
        if n < n_examples or n % n_examples:
            raise ConfigError(
                f"ensemble count {n}: an exemplar vector averages whole prompts of {n_examples} "
                f"demonstrations, so a count is a multiple of {n_examples}"
            )
        if n // n_examples > len(task.val):
            raise ConfigError(
                f"ensemble count {n}: {n // n_examples} prompts of {n_examples} demonstrations, and task "
                f"{task.name!r} has {len(task.val)} (one per val item); give counts up to "
                f"{len(task.val) * n_examples}"
            )


#: the marks of ``ensemble_scores``'s ``correct``: one per test item
RIGHT, WRONG = "x", "."


def ensemble_scores(
    adapter: ModelAdapter,
    task: Task,
    config: ExperimentConfig,
    seeds: Sequence[int],
    layer: int,
    counts: Sequence[int] = (5, 10, 15, 20, 25, 30),
    metric: str = "paper_ci",
    shared: SharedWork | None = None,
    on_progress: OnProgress | None = None,
) -> pd.DataFrame:
    """Accuracy of instruction, exemplar and ensemble vectors for one task and each seed.

    Rows: ``seed``, ``kind`` (instruction / exemplars / ensemble), ``n`` (examples behind the
    exemplar vector; 0 for the instruction alone), ``accuracy`` on the test split and ``correct``,
    each test item's score in the split's order (``x`` right, ``.`` not: no reader takes it for a
    number; ``item_scores`` reads it), so that two kinds can be compared item by item. The seeds'
    vectors patch the same test queries: one sweep runs the queries once for all of them.
    ``on_progress(done, total)`` is told that sweep's answers (test query x vector, ``total``:
    ``ensemble_answers``) after each batch; the vectors' extraction, before it, is not counted
    (in a reproduction its prompts' states were computed by the runs before)."""
    check_ensemble_counts(task, config.n_examples, counts)
    check_instruction_ends_at_delimiter(task, config.template)
    budget = config.budget(adapter)
    labels, vectors = [], []
    for seed in seeds:
        prompts = UnitPrompts(task, config, seed)
        states = last_token_states(adapter, prompts.extraction, budget, shared)[:, layer]  # [prompts, hidden]
        instruction = last_token_states(adapter, [prompts.instruction], budget, shared)[0, layer]  # [hidden]
        rng = random.Random(f"ensemble/{task.name}/{seed}")
        labels.append((seed, "instruction", 0))
        vectors.append(instruction)
        for n in counts:
            k = n // config.n_examples
            exemplars = states[rng.sample(range(len(states)), k)].mean(0)
            labels += [(seed, "exemplars", n), (seed, "ensemble", n)]
            vectors += [exemplars, (exemplars + instruction) / 2]
    queries = UnitPrompts(task, config, seeds[0]).test_queries  # the same for every seed
    layers = [layer] * len(vectors)
    result = sweep(adapter, queries, torch.stack(vectors), layers, budget, on_progress=on_progress)
    rows = []
    for column, (seed, kind, n) in enumerate(labels):
        correct = [
            first_token_scores(adapter.decode([int(token)]), item.answers, adapter.first_tokens_of)[metric]
            for item, token in zip(task.test, result.patched[:, column], strict=True)
        ]
        accuracy = sum(correct) / len(correct)
        marks = "".join(RIGHT if right else WRONG for right in correct)
        row = {"task": task.name, "seed": seed, "kind": kind, "n": n, "accuracy": accuracy}
        rows.append({**row, "correct": marks})
    return pd.DataFrame(rows)


def item_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """``ensemble_scores`` rows, one per test item (``item``: its place in the split) with its
    ``score`` (1.0 right, 0.0 not), for ``evaluation.uncertainty.paired_difference``."""
    marks = scores["correct"].astype(str)
    items = scores.drop(columns="correct").assign(score=marks.map(lambda m: [float(c == RIGHT) for c in m]))
    items = items.assign(item=items["score"].map(lambda s: list(range(len(s))))).explode(["score", "item"])
    return items.astype({"score": float, "item": int}).reset_index(drop=True)


def ensemble_answers(task: Task, seeds: Sequence[int], counts: Sequence[int]) -> int:
    """How many answers ``ensemble_scores`` counts on ``on_progress``: each test query under each
    vector (per seed the instruction's, and an exemplar and an ensemble vector per count)."""
    return len(task.test) * len(seeds) * (1 + 2 * len(counts))


def summarise_ensemble(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of the task-averaged accuracy, per kind and n; the std is the
    population one (``ddof=0``) as in every table (docs/metrics.md), NaN for one seed."""
    per_seed = scores.groupby(["kind", "n", "seed"]).accuracy.mean()
    by_kind = per_seed.groupby(["kind", "n"])
    summary = pd.DataFrame({"mean": by_kind.mean(), "std": by_kind.std(ddof=0).where(by_kind.count() > 1)})
    return summary.reset_index()
