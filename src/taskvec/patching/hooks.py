"""Forward hooks on decoder layers, as context managers that always remove themselves.

Both hooks act on the layer's output at the last sequence position: every prompt taskvec builds
ends with the delimiter token (an instruction vector's, the instruction alone, with its own last
token), and batches are left-padded, so "last" is exact.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn

from taskvec.errors import ConfigError

PatchMode = Literal["replace", "add"]


def check_mode(mode: str, scale: float = 1.0) -> None:
    """A patch replaces the layer's output at the last token, or adds ``scale`` times the vector
    to it; nothing else (a scale that ``replace`` would ignore is refused, not dropped)."""
    if mode not in ("replace", "add"):
        raise ConfigError(f"unknown patch mode {mode!r}; use 'replace' or 'add'")
    if mode == "replace" and scale != 1.0:
        raise ConfigError(
            f"scale {scale} has no effect with mode 'replace' (the vector replaces the state); "
            "use mode 'add' or drop the scale"
        )


def hidden_of(output) -> torch.Tensor:
    """Decoder layers return a tensor (transformers 5) or a tuple whose first item is one."""
    return output[0] if isinstance(output, tuple) else output


@contextmanager
def hooked(modules: Sequence[nn.Module], hook_for, pre_hook_for=None) -> Iterator[None]:
    """Register ``hook_for(index)`` on each module, and ``pre_hook_for(index)`` before it where
    given (a forward pre-hook that also sees the keyword arguments); remove every hook on exit,
    error or not."""
    handles = []
    try:
        for index, module in enumerate(modules):
            if pre_hook_for is not None:
                handles.append(module.register_forward_pre_hook(pre_hook_for(index), with_kwargs=True))
            handles.append(module.register_forward_hook(hook_for(index)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def recording_last_token(layers: Sequence[nn.Module]) -> Iterator[list[torch.Tensor | None]]:
    """Record each layer's output at the last position: ``records[l]: [batch, hidden]``."""
    records: list[torch.Tensor | None] = [None] * len(layers)

    def hook_for(index: int):
        def hook(_module, _inputs, output):
            records[index] = hidden_of(output)[:, -1, :].detach().clone()

        return hook

    with hooked(layers, hook_for):
        yield records


@contextmanager
def patching_last_token(
    layers: Sequence[nn.Module],
    patches: dict[int, tuple[torch.Tensor, torch.Tensor]],
    mode: PatchMode = "replace",
    scale: float = 1.0,
) -> Iterator[None]:
    """Overwrite (or add to) the last-position output of chosen layers for chosen batch rows.

    ``patches[layer] = (rows: [n] long, values: [n, hidden])``. Rows not listed run clean, so one
    batch can hold a different patched layer per row (the layer sweep).
    """
    check_mode(mode, scale)
    chosen = sorted(patches)

    def hook_for(position: int):
        rows, values = patches[chosen[position]]

        def hook(_module, _inputs, output):
            hidden = hidden_of(output)  # on this layer's device (one of several, for a spread model)
            rows_here = rows.to(hidden.device)
            values_here = values.to(hidden.device, hidden.dtype)
            if mode == "replace":
                hidden[rows_here, -1, :] = values_here
            else:
                hidden[rows_here, -1, :] += scale * values_here
            return output

        return hook

    with hooked([layers[i] for i in chosen], hook_for):
        yield
