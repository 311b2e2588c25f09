"""Task vectors of any shape for tests of what is done with them (saving, averaging, refusing),
with the metadata a real one carries; each test names only the fields it is about."""

from __future__ import annotations

import torch

from taskvec.vectors.task_vector import TaskVector, VectorMeta


def toy_meta(layers: int = 3, width: int = 8, **fields) -> VectorMeta:
    """A text-ICL vector's metadata for ``layers`` layers of width ``width``; ``fields`` replace
    the defaults (``seed=2``, ``task="capital"``, ``model_fingerprint=...``)."""
    defaults = dict(
        model="m",
        model_fingerprint="abc",
        num_layers=layers,
        hidden_size=width,
        task="t",
        spec="text-icl",
        modality="text",
        n_examples=5,
        n_prompts=2,
        seed=1,
        template="paper",
        layers=list(range(layers)),
    )
    return VectorMeta(**{**defaults, **fields})


def toy_vector(layers: int = 3, width: int = 8, values: torch.Tensor | None = None, **fields) -> TaskVector:
    """A task vector of random ``values`` (unless given) with ``toy_meta``'s metadata."""
    values = torch.randn(layers, width) if values is None else values
    return TaskVector(values, toy_meta(layers, width, **fields))
