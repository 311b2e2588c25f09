"""Task conflict (the paper's Fig. 9): the prompt asks for one task, the patch carries another.

Pairs share their inputs (a country has a capital and a currency), so the answer shows which
task won. The prompt is task A's instruction followed by the query; task B's vector is patched
into the query's last token; the model generates a few tokens greedily. Both directions of each
pair are run, and the unpatched prompt is kept as the control.
"""

from __future__ import annotations

import pandas as pd

from taskvec.evaluation.metrics import paper_match
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


def _matches(answer: str, item: Item) -> bool:
    first_word = answer.strip().split("\n", 1)[0]
    return any(paper_match(first_word, [a], case_sensitive=False) for a in item.answers)


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
        rows.append(
            {
                "prompted": prompted.name,
                "patched": patched.name,
                "input": item_a.input,
                "prompted_label": item_a.label,
                "patched_label": item_b.label,
                "control": before.strip(),
                "control_fits_prompted": _matches(before, item_a),
                "control_fits_patched": _matches(before, item_b),
                "output": after.strip(),
                "fits_prompted": _matches(after, item_a),
                "fits_patched": _matches(after, item_b),
            }
        )
    return pd.DataFrame(rows)


def conflict_answers(prompted: Task, patched: Task, limit: int | None = None) -> int:
    """How many answers ``conflict_rows`` counts on ``on_progress``: each shared item's control
    and patched run."""
    return 2 * len(shared_items(prompted, patched, limit))


def conflict_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per direction: how often the control follows the prompt, and how often the patched run
    answers the patched task (the patch 'wins') or still the prompted one."""
    grouped = rows.groupby(["prompted", "patched"])
    return pd.DataFrame(
        {
            "items": grouped.size(),
            "control: prompted task": grouped.control_fits_prompted.mean(),
            "patched: patched task wins": grouped.fits_patched.mean(),
            "patched: prompted task": grouped.fits_prompted.mean(),
        }
    ).round(3)
