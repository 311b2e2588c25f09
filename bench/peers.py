"""The validation-split layer sweep, three ways, in one run on the same model, data and machine.

    .venv/bin/python -m bench.peers                      # 6 tasks x 3 seeds, SmolLM2, 1 thread
    .venv/bin/python -m bench.peers --units 2 --peers taskvec nnsight
    .venv/bin/python -m bench.peers --model embedded-vlm --dtype bfloat16   # every peer in bfloat16

Peers (each sweeps every layer of every unit's 30 validation queries and runs them clean):
  paper    the paper's procedure: one full forward per query per patched layer, batch 1, no cache,
           the argmax of its float32 logits, plus the clean runs
  nnsight  the same sweep written with nnsight the way its docs show activation patching: per
           layer one ``trace`` over the unit's queries (one batch), the vector written into the
           layer's output at the last position, the argmax of the last logits saved; one clean trace
  taskvec  ``taskvec.sweep`` (prefix once, patched rows from layer l+1, batched across layers and
           queries, tokens read through ``greedy_head``: the exact argmax via a bfloat16 screen)

Every peer gets the same tokenised inputs (taskvec's left-padded encoding, explicit positions) and
computes only the last position's logits, so the comparison is the work, not the tokeniser.
Prints seconds, ratios, item-for-item equality with taskvec, and FLOP rates (see common.py).
Needs the ``bench`` extra (nnsight) for the nnsight peer.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource

import torch
from torch import nn

from bench.common import (
    add_model_arguments,
    build_units,
    executed_flops,
    floor_flops,
    matmul_rate,
    nnsight_sweep,
    paper_loop,
    per_forward_flops,
    setup,
    timed,
    token_lengths,
)
from taskvec.patching.sweep import SweepResult, sweep
from taskvec.tasks.registry import BUILTIN_TASKS

TASKS = list(BUILTIN_TASKS)


def paper_peer(adapter, unit, layers) -> SweepResult:
    return paper_loop(adapter, unit.queries, unit.vectors, layers)


def make_nnsight_peer(adapter):
    run = nnsight_sweep(adapter)
    return lambda adapter, unit, layers: run(unit.queries, unit.vectors, layers)


def taskvec_peer(adapter, unit, layers) -> SweepResult:
    return sweep(adapter, unit.queries, unit.vectors[layers], layers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--units", type=int, default=None, help="only the first N (task, seed) units")
    parser.add_argument("--peers", nargs="+", default=["paper", "nnsight", "taskvec"])
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count (an extra taskvec run)")
    args = parser.parse_args(argv)

    if "nnsight" in args.peers and importlib.util.find_spec("nnsight") is None:
        print("nnsight is not installed (the `bench` extra): the nnsight peer is skipped")
        args.peers = [peer for peer in args.peers if peer != "nnsight"]
    adapter, query = setup(args)
    seconds, units = timed(lambda: build_units(adapter, args, query, args.tasks, args.seeds))
    units = units[: args.units] if args.units else units
    layers = list(range(adapter.num_layers))
    lengths = [n for unit in units for n in token_lengths(adapter, unit.queries)]
    print(
        f"model {adapter.name}: {adapter.num_layers} layers, width {adapter.hidden_size}, vocab "
        f"{adapter.vocab_size}; {query} queries, {len(units)} units, {len(lengths)} queries of "
        f"{min(lengths)}-{max(lengths)} tokens; torch threads {torch.get_num_threads()}; "
        f"vectors extracted in {seconds:.1f} s (not timed below)"
    )

    runners = {"paper": paper_peer, "taskvec": taskvec_peer}
    if "nnsight" in args.peers:
        runners["nnsight"] = make_nnsight_peer(adapter)
    # peers take turns unit by unit, so a change in the machine's load hits all of them alike
    times = {peer: 0.0 for peer in args.peers}
    results = {peer: [] for peer in args.peers}
    for i, unit in enumerate(units):
        for peer in args.peers:
            seconds, result = timed(lambda peer=peer, unit=unit: runners[peer](adapter, unit, layers))
            times[peer] += seconds
            results[peer].append(result)
        row = "  ".join(f"{peer} {times[peer]:7.1f} s" for peer in args.peers)
        print(f"  after unit {i + 1}/{len(units)} ({unit.task}, seed {unit.seed}): {row}", flush=True)
    print("\n| peer | seconds | taskvec is faster by | predictions equal to taskvec |")
    print("|---|---:|---:|---|")
    for peer in args.peers:
        same = "-"
        if "taskvec" in results and peer != "taskvec":
            total = sum(r.patched.numel() + r.clean.numel() for r in results["taskvec"])
            equal = sum(
                int((a.patched == b.patched).sum() + (a.clean == b.clean).sum())
                for a, b in zip(results[peer], results["taskvec"], strict=True)
            )
            same = f"{equal}/{total}" + (" (all)" if equal == total else "")
        ratio = f"{times[peer] / times['taskvec']:.1f}x" if "taskvec" in times else "-"
        print(f"| {peer} | {times[peer]:.1f} | {ratio} | {same} |")

    floor = floor_flops(adapter, lengths, len(layers))
    full = per_forward_flops(adapter, lengths, len(layers))
    print(
        f"\nfloor {floor / 1e9:.1f} GFLOP; one forward per layer {full / 1e9:.1f} GFLOP ({full / floor:.1f}x)"
    )
    if not args.no_flops and "taskvec" in times:
        report_flops(adapter, units, layers, times, full, args.peers, args.rate_seconds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB on Linux
    print(f"peak RSS of this process {peak:.0f} MB")


def report_flops(adapter, units, layers, times, full, peers, rate_seconds: float) -> None:
    """taskvec's achieved FLOP rate (executed FLOPs / its timed seconds) against a plain matmul."""
    counted = executed_flops(lambda: [taskvec_peer(adapter, u, layers) for u in units])
    largest = max(
        (m for m in adapter.layers[0].modules() if isinstance(m, nn.Linear)), key=lambda m: m.weight.numel()
    )
    k, n = largest.in_features, largest.out_features  # the layer's biggest matmul, at 1024 rows
    # timed again right next to the matmul, so both see the same load on the machine
    seconds, _ = timed(lambda: [taskvec_peer(adapter, u, layers) for u in units])
    dtype = largest.weight.dtype  # the reference multiplies in what the model computes in
    reference = matmul_rate(1024, k, n, rate_seconds, dtype)
    rate = counted / seconds
    dtype_name = str(dtype).removeprefix("torch.")
    print(
        f"taskvec executed {counted / 1e9:.1f} GFLOP (FlopCounterMode) in {seconds:.1f} s (re-timed) = "
        f"{rate / 1e9:.1f} GFLOP/s; plain [1024 x {k}] @ [{k} x {n}] {dtype_name} matmul "
        f"{reference / 1e9:.1f} GFLOP/s -> {100 * rate / reference:.0f}% of it"
    )
    for peer in peers:
        if peer != "taskvec":
            print(f"  {peer}: {full / times[peer] / 1e9:.1f} GFLOP/s on its {full / 1e9:.0f} GFLOP of work")


if __name__ == "__main__":
    main()
