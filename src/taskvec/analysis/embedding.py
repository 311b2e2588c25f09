"""2-D maps of per-prompt task vectors (t-SNE, PCA, UMAP if installed), to see them cluster by task."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
import torch

Method = Literal["tsne", "pca", "umap"]
METHODS: tuple[str, ...] = ("tsne", "pca", "umap")


def umap_available() -> bool:
    return importlib.util.find_spec("umap") is not None


def embed(points: np.ndarray, method: Method = "tsne", seed: int = 0) -> np.ndarray:
    """``points: [n, hidden]`` -> ``[n, 2]``. t-SNE's perplexity shrinks to fit small ``n``."""
    points = np.asarray(points, dtype=np.float64)
    n = points.shape[0]
    if n < 3:
        raise ValueError(f"an embedding plot needs at least 3 points, got {n}")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(points)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
        return tsne.fit_transform(points)
    if method == "umap":
        if not umap_available():
            raise ValueError("UMAP needs the umap-learn package: pip install umap-learn")
        import umap

        return umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed).fit_transform(points)
    raise ValueError(f"unknown embedding method {method!r}; choose one of {METHODS}")


def embedding_frame(
    states: Mapping[tuple[str, str], torch.Tensor], method: Method = "tsne", seed: int = 0
) -> pd.DataFrame:
    """Embed per-prompt vectors ``{(task, spec): [prompts, hidden]}`` together.

    Rows: task, spec, prompt, x, y; a PCA's frame holds the shares of the variance its axes carry
    in ``attrs["explained_variance"]``."""
    labels, blocks = [], []
    for (task, spec), block in states.items():
        blocks.append(block.float().numpy())
        labels.extend({"task": task, "spec": spec, "prompt": i} for i in range(block.shape[0]))
    points = np.concatenate(blocks)
    coords = embed(points, method, seed)
    frame = pd.DataFrame(labels)
    frame["x"], frame["y"] = coords[:, 0], coords[:, 1]
    if method == "pca":  # how much of the spread the map shows (its plot has no scale)
        frame.attrs["explained_variance"] = explained_variance(points)
    return frame


def explained_variance(points: np.ndarray) -> tuple[float, float]:
    """The shares of the variance of ``points`` that PCA's two axes carry."""
    centred = np.asarray(points, dtype=np.float64) - np.mean(points, axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    shares = singular**2 / np.sum(singular**2)
    return float(shares[0]), float(shares[1]) if len(shares) > 1 else 0.0


def cluster_purity(frame: pd.DataFrame) -> float:
    """Share of points whose nearest other point (in the 2-D map) belongs to the same task."""
    coords = frame[["x", "y"]].to_numpy()
    distances = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(1)
    tasks = frame["task"].to_numpy()
    return float((tasks[nearest] == tasks).mean())
