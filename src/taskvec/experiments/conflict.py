"""Task conflict (the paper's Fig. 9): the prompt asks for one task, the patch carries another.

Pairs share their inputs (a country has a capital and a currency), so the answer shows which
task won. The prompt is task A's instruction followed by the query; task B's vector is patched
into the query's last token; the model generates a few tokens greedily. Both directions of each
pair are run, and the unpatched prompt is kept as the control.
"""

from __future__ import annotations

import pandas as pd

from taskvec.evaluation.metrics import paper_match, whole_label_match
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.models.adapter import ModelAdapter
from taskvec.models.batching import OnProgress
from taskvec.patching.patch import Patch, generate_under_patches
from taskvec.prompts.inputs import item_input
from taskvec.tasks.task import Item, Task

PAIRS: tuple[tuple[str, str], ...] = (
    ("country_capital", "country_currency"),
    ("animal_latin", "animal_young"),
    ("food_color", "food_flavor"),
)


def shared_items(first: Task, second: Task, limit: int | None = None) -> list[tuple[Item, Item]]:
    """Test items of ``first`` whose input also has an item in ``second`` (matched by input)."""
    others = {item.input: item for item in (*second.val, *second.test)}
    pairs = [(item, others[item.input]) for item in first.test if item.input in others]
    return pairs[:limit] if limit else pairs


#: how an answer is credited to a task: ``paper``, the paper's prefix rule either way
#: (case-insensitive), and ``whole_label``, which needs the whole label or an alias at the start
#: (docs/metrics.md): by the first, 'francophone Switzerland' fits the currency 'franc'
CONFLICT_METRICS = ("paper", "whole_label")


def _matches(answer: str, item: Item, metric: str = "paper") -> bool:
    first_line = answer.strip().split("\n", 1)[0]
    if metric == "whole_label":
        return whole_label_match(first_line, item.answers)
    return any(paper_match(first_line, [a], case_sensitive=False) for a in item.answers)


def metric_column(column: str, metric: str) -> str:
    """A row's column of ``conflict_rows`` by ``metric`` (the paper's columns keep their names)."""
    return column if metric == "paper" else f"{column}_{metric}"


#: ``conflict_summary``'s column titles (the paper's metric; another's gains its name) and the
#: ``conflict_rows`` column each averages
SUMMARY_TITLES = {
    "control: prompted task": "control_fits_prompted",
    "control: patched task": "control_fits_patched",
    "patched: patched task wins": "fits_patched",
    "patched: prompted task": "fits_prompted",
}

#: the columns ``conflict_rows`` scores each answer in, per metric (a table without them is of an
#: older taskvec, computed again)
FIT_COLUMNS = tuple(
    metric_column(column, metric) for metric in CONFLICT_METRICS for column in SUMMARY_TITLES.values()
)


def conflict_rows(
    adapter: ModelAdapter,
    prompted: Task,
    patched: Task,
    vector,  # [hidden]: the patched task's vector at ``layer``
    layer: int,
    config: ExperimentConfig,
    limit: int | None = None,
    on_progress: OnProgress | None = None,
) -> pd.DataFrame:
    """One row per shared item: the control and the patched generation, and which task each
    answer fits. ``on_progress(done, total)`` is told the answers given (item x control and
    patched run; ``total``: ``conflict_answers``) after each batch."""
    pairs = shared_items(prompted, patched, limit)
    queries = [
        config.template.instructed(prompted.instruction, item_input(item, config.query, config.style))
        for item, _ in pairs
    ]
    control, steered = generate_under_patches(
        adapter,
        queries,
        [None, Patch(layer, vector)],
        config.answer_tokens,
        budget=config.budget(adapter),
        on_progress=on_progress,
    )
    rows = []
    for (item_a, item_b), before, after in zip(pairs, control, steered, strict=True):
        row = {
            "prompted": prompted.name,
            "patched": patched.name,
            "input": item_a.input,
            "prompted_label": item_a.label,
            "patched_label": item_b.label,
            "control": before.strip(),
            "output": after.strip(),
        }
        for metric in CONFLICT_METRICS:
            for answer, name in ((before, "control_fits"), (after, "fits")):
                row[metric_column(f"{name}_prompted", metric)] = _matches(answer, item_a, metric)
                row[metric_column(f"{name}_patched", metric)] = _matches(answer, item_b, metric)
        rows.append(row)
    return pd.DataFrame(rows)


def conflict_answers(prompted: Task, patched: Task, limit: int | None = None) -> int:
    """How many answers ``conflict_rows`` counts on ``on_progress``: each shared item's control
    and patched run."""
    return 2 * len(shared_items(prompted, patched, limit))


def conflict_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per direction and metric: how often the control follows the prompt, how often it already
    fits the patched task (an answer both tasks accept, or the item's own name: what the patch
    needs no vector for), and how often the patched run answers the patched task (the patch
    'wins') or still the prompted one."""
    grouped = rows.groupby(["prompted", "patched"])
    columns = {"items": grouped.size()}
    for metric in CONFLICT_METRICS:
        by = "" if metric == "paper" else f" ({metric})"
        for title, column in SUMMARY_TITLES.items():
            columns[title + by] = grouped[metric_column(column, metric)].mean()
    return pd.DataFrame(columns).round(3)
