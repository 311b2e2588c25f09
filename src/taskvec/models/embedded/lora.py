"""LoRA on the embedded VLM's language model (peft), for the variant whose LLM is tuned.

LLaVA trains its projector against a frozen LLM first, then tunes projector and LLM together.
The embedded VLM ships the first step (``embedded-vlm-<backbone>``: frozen LLM, so on text it
*is* the LLM); ``embedded-vlm-<backbone>-lora`` adds the second with low-rank adapters on the
decoder's linear layers (``taskvec align --stage lora``). peft injects the adapters in place
(``inject_adapter_in_model``): module paths do not change, so the decoder layers taskvec hooks are
the same modules. Shipped adapters are merged into the base weights at load (inference costs
what the bare LLM costs); during training they stay separate, and :func:`adapters_disabled`
turns them off to get the frozen LLM's own outputs (the distillation teacher).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

from taskvec.errors import ModelSpecError

#: the decoder's linear layers that get adapters by default (attention and MLP, as QLoRA / LLaVA-LoRA do)
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: attention projections only: what the shipped ``lora-gemma3`` tunes
ATTENTION_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


def lora_layers(model: nn.Module) -> list[LoraLayer]:
    return [module for module in model.modules() if isinstance(module, LoraLayer)]


def add_lora(
    model: nn.Module,
    rank: int,
    alpha: float,
    targets: tuple[str, ...] = DEFAULT_TARGETS,
    layers: tuple[int, ...] | None = None,
) -> None:
    """Inject fresh adapters (``B = 0``: the model computes as before) into ``model`` in place,
    in the decoder layers ``layers`` (None: all); only the adapters are trainable afterwards."""
    if lora_layers(model):
        raise ModelSpecError("the language model already holds LoRA adapters")
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=list(targets),
        bias="none",
        layers_to_transform=None if layers is None else list(layers),
        layers_pattern=None if layers is None else "layers",
    )
    inject_adapter_in_model(config, model)
    if not lora_layers(model):
        raise ModelSpecError(f"no module of the language model matches the LoRA targets {list(targets)}")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_("lora_" in name)


def lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters' tensors, by their module paths."""
    return {name: tensor for name, tensor in model.state_dict().items() if "lora_" in name}


def load_lora(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    rank: int,
    alpha: float,
    targets: tuple[str, ...],
    layers: tuple[int, ...] | None = None,
) -> None:
    """Inject adapters shaped by ``rank``/``targets``/``layers``, fill them from ``state`` (every
    adapter tensor must be there, nothing else) and merge them into the base weights."""
    add_lora(model, rank, alpha, targets, layers)
    expected = set(lora_state(model))
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ModelSpecError(
            f"LoRA weights do not fit the language model: missing {missing[:3]}, extra {extra[:3]}"
        )
    model.load_state_dict(state, strict=False)
    for layer in lora_layers(model):
        layer.merge()
    model.requires_grad_(False)


@contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[None]:
    """Run ``model`` as the bare LLM (unmerged adapters switched off), then switch them back on."""
    layers = lora_layers(model)
    if any(layer.merged for layer in layers):
        raise ModelSpecError("merged LoRA adapters cannot be switched off")
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(True)
