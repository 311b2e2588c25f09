"""Cosine similarity between task vectors of tasks x specifications, with a random-pair baseline.

Residual streams share a large common direction, so raw cosines between any two states are high;
a number only means something next to the baseline: the mean similarity of pairs that belong to
*different* tasks (any specification), taken at the same layer.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    """Mean cosine over three kinds of pairs (each unordered pair once).

    same_task: same task, different specification (what cross-modal transfer relies on);
    same_spec: same specification, different task; random_pair: different tasks, any
    specification (the baseline)."""
    keys = list(matrix.index)
    groups: dict[str, list[float]] = {"same_task": [], "same_spec": [], "random_pair": []}
    for i, (task_a, spec_a) in enumerate(keys):
        for j in range(i + 1, len(keys)):
            task_b, spec_b = keys[j]
            value = float(matrix.iat[i, j])
            if task_a == task_b and spec_a != spec_b:
                groups["same_task"].append(value)
            if task_a != task_b:
                groups["random_pair"].append(value)
                if spec_a == spec_b:
                    groups["same_spec"].append(value)
    return {name: (sum(v) / len(v) if v else float("nan")) for name, v in groups.items()}


def similarity_by_layer(vectors: Mapping[Key, torch.Tensor]) -> pd.DataFrame:
    """``pair_summary`` at every layer of vectors ``{(task, spec): [layers, hidden]}``.

    Index: layer; columns: same_task, same_spec, random_pair, and same_task - random_pair."""
    num_layers = next(iter(vectors.values())).shape[0]
    rows = []
    for layer in range(num_layers):
        summary = pair_summary(cosine_matrix({k: v[layer] for k, v in vectors.items()}))
        rows.append({"layer": layer, **summary, "margin": summary["same_task"] - summary["random_pair"]})
    return pd.DataFrame(rows).set_index("layer")
