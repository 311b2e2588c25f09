"""Cosine similarity between task vectors of tasks x specifications, with a random-pair baseline.

Residual streams share a large common direction, so raw cosines between any two states are high;
a number only means something next to a baseline at the same layer: pairs of *different* tasks.
Vectors of one specification share their prompt format, which alone makes them similar, so the
baseline for "same task, other specification" is "other task, other specification"
(``different_both``); ``random_pair`` (other task, any specification) is reported too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

Key = tuple[str, str]  # (task, spec)


def cosine_matrix(vectors: Mapping[Key, torch.Tensor]) -> pd.DataFrame:
    """Cosine similarity of vectors ``{(task, spec): [hidden]}``, rows and columns (task, spec)."""
    keys = list(vectors)
    stacked = torch.stack([vectors[k].float() for k in keys])  # [n, hidden]
    unit = torch.nn.functional.normalize(stacked, dim=-1)
    index = pd.MultiIndex.from_tuples(keys, names=["task", "spec"])
    return pd.DataFrame((unit @ unit.T).numpy(), index=index, columns=index)


def pair_summary(matrix: pd.DataFrame) -> dict[str, float]:
    """Mean cosine over kinds of pairs (each unordered pair once).

    same_task: same task, other specification (what cross-modal transfer relies on);
    same_spec: same specification, other task; different_both: other task and other
    specification (the baseline for same_task); random_pair: other task, any specification."""
    keys = list(matrix.index)
    groups: dict[str, list[float]] = {
        "same_task": [],
        "same_spec": [],
        "different_both": [],
        "random_pair": [],
    }
    for i, (task_a, spec_a) in enumerate(keys):
        for j in range(i + 1, len(keys)):
            task_b, spec_b = keys[j]
            value = float(matrix.iat[i, j])
            if task_a == task_b and spec_a != spec_b:
                groups["same_task"].append(value)
            if task_a != task_b:
                groups["random_pair"].append(value)
                groups["same_spec" if spec_a == spec_b else "different_both"].append(value)
    return {name: _mean(values) for name, values in groups.items()}


def similarity_by_layer(vectors: Mapping[Key, torch.Tensor]) -> pd.DataFrame:
    """``pair_summary`` at every layer of vectors ``{(task, spec): [layers, hidden]}``.

    Index: layer; columns: the pair kinds, and ``margin`` = same_task - different_both."""
    num_layers = next(iter(vectors.values())).shape[0]
    rows = []
    for layer in range(num_layers):
        summary = pair_summary(cosine_matrix({k: v[layer] for k, v in vectors.items()}))
        rows.append({"layer": layer, **summary, "margin": summary["same_task"] - summary["different_both"]})
    return pd.DataFrame(rows).set_index("layer")


def same_task_cosines(
    first: Mapping[tuple[str, int], torch.Tensor],
    second: Mapping[tuple[str, int], torch.Tensor],
    tasks: Sequence[str],
    seeds: Sequence[int],
    rows: Sequence[str] | None = None,
) -> tuple[float, float]:
    """Mean cosine of ``first[(task, seed)]`` with ``second[(other task, seed)]`` (vectors
    ``[hidden]`` of one layer, from two sources: e.g. the LLM's and the VLM's, Table 4), over every
    pair of tasks of each seed: (same task, different tasks). The second is the baseline; NaN
    where there is no other task (a reproduction of one task). ``rows``: only the pairs whose
    first task is one of these (the tasks read at this layer, where each task has its own)."""
    same, different = [], []
    for seed in seeds:
        for a in tasks if rows is None else rows:
            for b in tasks:
                cosine = float(torch.cosine_similarity(first[(a, seed)], second[(b, seed)], dim=0))
                (same if a == b else different).append(cosine)
    return _mean(same), _mean(different)


def _mean(values: Sequence[float]) -> float:
    """Their mean; NaN for none (a kind of pair that does not occur)."""
    return sum(values) / len(values) if values else float("nan")
