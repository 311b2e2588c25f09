"""The whole paper-table run of one condition, timed by protocol step, with its peak memory.

    .venv/bin/python -m bench.table     # embedded VLM, text ICL -> image (noto), 6 tasks x 3 seeds
    .venv/bin/python -m bench.table --seeds 1 --threads 2

It runs ``taskvec.evaluate`` (what ``taskvec run`` and ``taskvec reproduce`` run for every condition)
into a fresh temporary folder: per unit the task vector, the validation sweep of every layer (and
the test sweep with ``--test-layers all``; ``reproduce`` reads the test split at the chosen layer
only), xBase and No Context answers; then the chosen layer's multi-token xPatch answers. Prints the
wall time of each step (``protocol.observing_steps``; ``calls``: the units that ran it, a step that
another seed already computed, like the No Context answers, taking no time), the peak RSS of the
process, and, for the step that costs most (the xBase prompts: five examples and the query, a
full forward each), the FLOPs of its prompt tokens and the rate they ran at, against a plain
float32 matmul on this machine.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import taskvec
from bench.common import add_reproduction_arguments, load_for_reproduction, matmul_rate, model_shapes
from taskvec.evaluation import protocol
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.models.batching import token_counts
from taskvec.models.shared_work import prompts_digest
from taskvec.pipelines.evaluate import evaluate
from taskvec.tasks.registry import BUILTIN_TASKS

TASKS = list(BUILTIN_TASKS)


#: the protocol's steps (``protocol.observing_steps``) as this table names them
STEPS = {
    "layer sweep (val)": "val sweep",
    "layer sweep (test)": "test sweep",
    "xPatch answers": "xPatch answers (chosen layer)",
}


def step_timer(seconds: dict[str, float], counts: dict[str, int]) -> protocol.StepObserver:
    """A step observer that adds each step's wall time up under its name."""
    started: dict[str, float] = {}

    def observe(moment: str, step: str) -> None:
        if moment == "start":
            started[step] = time.perf_counter()
            return
        name = STEPS.get(step, step)
        seconds[name] += time.perf_counter() - started.pop(step)
        counts[name] += 1

    return observe


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_reproduction_arguments(parser)
    parser.add_argument("--spec", default="text-icl")
    parser.add_argument("--query", default="image")
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--answer-tokens", type=int, default=4, help="as taskvec reproduce")
    parser.add_argument(
        "--test-layers", default="chosen", choices=["all", "chosen"], help="as taskvec reproduce: chosen"
    )
    args = parser.parse_args(argv)

    loaded = time.perf_counter()
    adapter = load_for_reproduction(args)
    load_seconds = time.perf_counter() - loaded
    config = ExperimentConfig.create(
        model=adapter.name,
        tasks=args.tasks,
        seeds=args.seeds,
        spec=args.spec,
        query=args.query,
        style=args.style,
        template=args.template,
        answer_tokens=args.answer_tokens,
        test_layers=args.test_layers,
    )
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    units = [protocol.UnitPrompts(taskvec.load_task(t), config, s) for t in args.tasks for s in args.seeds]
    with tempfile.TemporaryDirectory() as folder, protocol.observing_steps(step_timer(seconds, counts)):
        start = time.perf_counter()
        result = evaluate(config, Path(folder) / "run", adapter, show_progress=True)
        wall = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # the xBase prompts' FLOPs: every token that runs through every layer (attention not counted);
    # prompts a run answers once (an instruction run's are the same for every seed) count once,
    # and an instruction, run once before all of a unit's queries, counts once
    tokens = 0
    for unit in {prompts_digest(u.test_base): u for u in units}.values():
        tokens += sum(token_counts(adapter, unit.test_base))
        if config.spec == "instruction":
            lead = token_counts(adapter, unit.test_examples[:1])[0]
            tokens -= (len(unit.test_base) - 1) * lead
    xbase_flops = tokens * 2 * model_shapes(adapter)["layer_weights"] * adapter.num_layers
    rate = matmul_rate(256, adapter.hidden_size, 4 * adapter.hidden_size, args.rate_seconds)

    print(
        f"\nmodel {adapter.name}: {args.spec} -> {args.query} ({args.style}), {len(args.tasks)} tasks x "
        f"{len(args.seeds)} seeds, {args.threads} threads; model load {load_seconds:.1f} s (not counted)"
    )
    print(f"{'step':32s} {'calls':>6s} {'seconds':>9s} {'share':>6s}")
    for name, value in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"{name:32s} {counts[name]:6d} {value:9.1f} {value / wall:6.0%}")
    other = wall - sum(seconds.values())
    print(f"{'rest (validation, scoring, writing)':32s} {'':6s} {other:9.1f} {other / wall:6.0%}")
    print(f"{'total (wall)':32s} {'':6s} {wall:9.1f}")
    print(f"peak RSS {rss / 1024:.2f} GB; best layer {result.best_layer}")
    xbase = seconds["xBase answers"]
    print(
        f"xBase prompts: {tokens} tokens, {xbase_flops / 1e12:.2f} TFLOP in the decoder layers alone "
        f"-> {xbase_flops / xbase / 1e9:.0f} GFLOP/s over the whole xBase step; a plain float32 "
        f"matmul [256 x {adapter.hidden_size}] @ [{adapter.hidden_size} x {4 * adapter.hidden_size}] "
        f"runs at {rate / 1e9:.0f} GFLOP/s here"
    )
    print("test accuracy, paper metric, mean over seeds then tasks:")
    frame = result.predictions.astype({"paper": float})
    by_task = frame.groupby(["method", "task"])["paper"].mean()
    print(by_task.groupby("method").mean().round(3).to_string())


if __name__ == "__main__":
    main()
