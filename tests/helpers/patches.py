"""Patches and probes the engine's tests share: a mixed batch of patches, and what the first
decoder layer sees while something runs."""

from __future__ import annotations

import torch

from taskvec.patching.hooks import hooked
from taskvec.patching.patch import Patch


def mixed_patches(adapter) -> list[Patch | None]:
    """A clean control, two patches at one layer, and ones of other layers, modes and scales."""
    vectors = 3 * torch.randn(4, adapter.hidden_size, generator=torch.Generator().manual_seed(0))
    last = adapter.num_layers - 1
    return [
        None,
        Patch(1, vectors[0]),
        Patch(1, vectors[1]),
        Patch(0, vectors[2], "add", 0.5),
        Patch(last, vectors[3], "add", 2.0),
    ]


def shapes_through_first_layer(adapter, run) -> list[torch.Size]:
    """The output shape ``[batch, seq, hidden]`` of every call of the first decoder layer while
    ``run()`` runs."""
    shapes = []

    def hook_for(_index):
        return lambda _module, _inputs, output: shapes.append(
            (output[0] if isinstance(output, tuple) else output).shape
        )

    with hooked(adapter.layers[:1], hook_for):
        run()
    return shapes


def sequence_lengths_through_first_layer(adapter, run) -> list[int]:
    return [shape[1] for shape in shapes_through_first_layer(adapter, run)]
