"""Shared parts of the sweep benchmarks: model and unit set-up, timing, FLOP counts.

Run by hand (never as tests). FLOPs are counted two ways:
- *executed*: ``torch.utils.flop_counter.FlopCounterMode`` over a separate, untimed run of the same
  work (it counts matmuls, batched matmuls and attention: 2 FLOPs per multiply-add; elementwise
  ops, norms and softmax are not counted);
- *floor*: what the sweep needs at least, from the model's shapes (``floor_flops``).
A FLOP rate is FLOPs / wall seconds of the timed run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import taskvec
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts, task_vector_for
from taskvec.models.adapter import ModelAdapter
from taskvec.models.registry import LoadOptions
from taskvec.patching.hooks import patching_last_token
from taskvec.patching.sweep import SweepResult
from taskvec.prompts.template import Prompt
from taskvec.tasks.registry import load_task


def add_model_arguments(parser: argparse.ArgumentParser, dtype: bool = True) -> None:
    """The model and prompt options; ``dtype=False`` for a script that sets the dtype itself (an
    option it would overwrite is not offered: ``--dtype`` there was ignored in silence)."""
    parser.add_argument("--model", default="smollm2-135m", help="a named model or HF id (taskvec models)")
    parser.add_argument(
        "--query", choices=["text", "image"], default=None, help="default: image if supported"
    )
    parser.add_argument("--style", default="noto", help="image style for image queries")
    parser.add_argument("--template", default="paper")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every peer (default 1)")
    if dtype:
        parser.add_argument(
            "--dtype",
            default="float32",
            help="what the model computes in, for every peer (as taskvec run --dtype)",
        )
    add_rate_argument(parser)


def add_rate_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate-seconds", type=float, default=2.0, help="how long each plain matmul rate is timed"
    )


def add_reproduction_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the scripts that time steps as ``taskvec reproduce`` runs them (its defaults)."""
    parser.add_argument("--model", default="embedded-vlm")
    parser.add_argument("--style", default="noto")
    parser.add_argument("--template", default="spaced")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="float32", help="as taskvec reproduce --dtype")
    add_rate_argument(parser)


def load_for_reproduction(args) -> ModelAdapter:
    """``args.model`` in ``args.dtype``, with torch on ``args.threads`` threads."""
    torch.set_num_threads(args.threads)
    return taskvec.load_model(args.model, LoadOptions(dtype=args.dtype))


def setup(args) -> tuple[ModelAdapter, str]:
    torch.set_num_threads(args.threads)
    adapter = taskvec.load_model(args.model, LoadOptions(dtype=args.dtype))
    query = args.query or ("image" if adapter.supports_images else "text")
    return adapter, query


@dataclass
class Unit:
    """One (task, seed): the validation queries and the task vectors of every layer."""

    task: str
    seed: int
    queries: list[Prompt]
    vectors: torch.Tensor  # [layers, hidden]


def build_units(
    adapter: ModelAdapter, args, query: str, tasks: Sequence[str], seeds: Sequence[int]
) -> list[Unit]:
    """The protocol's own prompts and vectors (``UnitPrompts``, ``task_vector_for``): text-ICL vectors."""
    config = ExperimentConfig.create(
        model=adapter.name,
        tasks=list(tasks),
        seeds=list(seeds),
        query=query,
        style=args.style,
        template=args.template,
    )
    units = []
    for name in tasks:
        task = load_task(name)
        for seed in seeds:
            prompts = UnitPrompts(task, config, seed)
            vectors = task_vector_for(adapter, prompts).vectors
            units.append(Unit(name, seed, prompts.val_queries, vectors))
    return units


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def executed_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_rate(m: int, k: int, n: int, seconds: float = 2.0, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a plain ``[m, k] @ [k, n]`` in ``dtype`` on this machine, best of several timed bursts."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    out = torch.empty(m, n, dtype=dtype)
    torch.mm(a, b, out=out)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(10):
            torch.mm(a, b, out=out)
        best = max(best, 10 * 2 * m * k * n / (time.perf_counter() - start))
    return best


def _text_config(adapter: ModelAdapter):
    config = adapter.model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def model_shapes(adapter: ModelAdapter) -> dict:
    """Per-layer matmul weights, attention width (heads x head_dim) and head size, from the model."""
    weights = (
        sum(
            module.weight.numel()
            for layer in adapter.layers
            for module in layer.modules()
            if isinstance(module, nn.Linear)
        )
        / adapter.num_layers
    )
    text = _text_config(adapter)
    heads = getattr(text, "num_attention_heads", None)
    head_dim = getattr(text, "head_dim", None) or (adapter.hidden_size // heads if heads else None)
    width = heads * head_dim if heads and head_dim else adapter.hidden_size
    return {
        "layer_weights": weights,
        "attention_width": width,
        "head": adapter.hidden_size * adapter.vocab_size,
    }


def layer_flops(shapes: dict, tokens: float, attended: float) -> float:
    """FLOPs of ``tokens`` token steps through one decoder layer that attend to ``attended``
    positions in all: the layer's matmuls per token, scores and weighted values per position."""
    return 2 * shapes["layer_weights"] * tokens + 4 * shapes["attention_width"] * attended


def floor_flops(adapter: ModelAdapter, lengths: Sequence[int], patched_layers: int) -> float:
    """FLOPs the all-layer sweep needs at least: each query's prefix once through every layer, its
    last token clean through every layer, each patched row from layer l+1 up (L(L-1)/2 steps when
    all L layers are patched), attention over the prompt for each of those steps, one head per row."""
    shapes = model_shapes(adapter)
    layers = adapter.num_layers

    def step(kv: int) -> float:  # one token through one layer, attending to kv positions
        return layer_flops(shapes, 1, kv)

    total = 0.0
    for length in lengths:
        total += layers * sum(step(t) for t in range(1, length))  # prefix
        total += layers * step(length)  # clean last token
        total += patched_layers * (layers - 1) / 2 * step(length)  # patched rows, layers l+1..
        total += (patched_layers + 1) * 2 * shapes["head"]
    return total


def per_forward_flops(adapter: ModelAdapter, lengths: Sequence[int], patched_layers: int) -> float:
    """FLOPs of the paper's procedure: a full forward (last-position head) per query and layer, + clean."""
    shapes = model_shapes(adapter)
    step = lambda kv: layer_flops(shapes, 1, kv)  # noqa: E731
    one = [adapter.num_layers * sum(step(t) for t in range(1, n + 1)) + 2 * shapes["head"] for n in lengths]
    return (patched_layers + 1) * sum(one)


def token_lengths(adapter: ModelAdapter, queries: Sequence[Prompt]) -> list[int]:
    return [int(adapter.encode([q]).attention_mask.sum()) for q in queries]


# --- the peers every sweep benchmark compares taskvec with ------------------------------------------


def paper_loop(adapter: ModelAdapter, queries, vectors: torch.Tensor, layers: list[int]) -> SweepResult:
    """The paper's procedure: per query (batch 1) and layer a full forward with the vector written
    into the layer's output at the last token, then the argmax of the last logits; plus clean."""
    patched = torch.empty(len(queries), len(layers), dtype=torch.long)
    clean = torch.empty(len(queries), dtype=torch.long)
    row = torch.zeros(1, dtype=torch.long, device=adapter.device)
    for q, query in enumerate(queries):
        encoded = adapter.encode([query])
        for j, layer in enumerate(layers):
            with patching_last_token(adapter.layers, {layer: (row, vectors[layer][None])}):
                patched[q, j] = int(adapter.forward(encoded).logits[0, -1].argmax())
        clean[q] = int(adapter.forward(encoded).logits[0, -1].argmax())
    return SweepResult(list(layers), patched, clean)


def nnsight_sweep(adapter: ModelAdapter) -> Callable | None:
    """The sweep as nnsight's docs write activation patching: per layer one trace over all
    queries, the vector written into the layer's output at the last position. None without nnsight."""
    try:
        from nnsight import NNsight
    except ImportError:
        return None
    model = NNsight(adapter.model)
    names = {module: name for name, module in adapter.model.named_modules()}
    envoys = []
    for layer in adapter.layers:
        envoy = model
        for part in names[layer].split("."):
            envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
        envoys.append(envoy)

    def run(queries, vectors: torch.Tensor, layers: list[int]) -> SweepResult:
        inputs = adapter.full_inputs(adapter.encode(queries))
        dtype = next(adapter.model.parameters()).dtype
        patched = torch.empty(len(queries), len(layers), dtype=torch.long)
        for j, layer in enumerate(layers):
            value = vectors[layer].to(adapter.device, dtype)
            with model.trace(**inputs, logits_to_keep=1):
                envoys[layer].output[:, -1, :] = value
                tokens = model.output.logits[:, -1, :].argmax(-1).save()
            patched[:, j] = torch.as_tensor(tokens).cpu()
        with model.trace(**inputs, logits_to_keep=1):
            clean = model.output.logits[:, -1, :].argmax(-1).save()
        return SweepResult(list(layers), patched, torch.as_tensor(clean).cpu())

    return run
