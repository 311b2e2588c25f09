"""bfloat16 honesty on trained weights, on the CPU: does taskvec's fast sweep in bfloat16 give the
float32 answer as often as the paper's loop in bfloat16 does?

    python -m bench.honesty                                    # smollm2-135m, text queries
    python -m bench.honesty --model embedded-vlm --tasks country_capital food_color

The GPU check (``bench/gpu.py``) measures this at the paper's shapes with random weights, whose
top-2 logit gaps are tiny and make every disagreement a coin toss. Here the weights are trained, so
a gap means what it means in a run. Per (task, seed 1): the protocol's own text-ICL vectors
(``build_units``) and validation queries, the all-layer sweep by taskvec and by the paper's loop
(batch 1, one full forward per query and layer, ``bench.gpu.paper_loop``) in bfloat16, then the
same weights cast to float32: the loop against taskvec (equal on every item is the target) and
the float32 reference of every item with its top-2 logit gap. Printed: how often each bfloat16
path disagrees with the reference, the gap of each disagreeing item, the gaps' quantiles over all
items, and the seconds of each path on this machine (a CPU's, not a GPU's).
"""

from __future__ import annotations

import argparse
import json

import torch

from bench.common import add_model_arguments, build_units, paper_loop, setup, timed
from bench.gpu import BIG_BUDGET, agreement, float32_reference, honesty
from taskvec.patching.sweep import SweepResult, sweep


def _joined(results: list[SweepResult]) -> SweepResult:
    return SweepResult(
        results[0].layers, torch.cat([r.patched for r in results]), torch.cat([r.clean for r in results])
    )


def main(argv: list[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    add_model_arguments(parser, dtype=False)  # bfloat16, then float32, by design
    parser.add_argument("--tasks", nargs="+", default=["country_capital", "food_color"])
    parser.add_argument("--queries", type=int, default=30, help="validation queries per task (at most)")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    args.dtype = "bfloat16"
    adapter, query = setup(args)
    units = build_units(adapter, args, query, args.tasks, [1])
    layers = list(range(adapter.num_layers))
    runs = [(unit.queries[: args.queries], unit.vectors.to(torch.bfloat16)) for unit in units]

    fast_s, fast = timed(lambda: [sweep(adapter, q, v, layers, BIG_BUDGET) for q, v in runs])
    loop_s, loop = timed(lambda: [paper_loop(adapter, q, v, layers) for q, v in runs])
    adapter.model.float()  # the same weights, cast: the reference
    runs32 = [(q, v.float()) for q, v in runs]
    fast32 = [sweep(adapter, q, v, layers, BIG_BUDGET) for q, v in runs32]
    loop32 = [paper_loop(adapter, q, v, layers) for q, v in runs32]
    references = [float32_reference(adapter, q, v, layers) for q, v in runs32]

    reference = _joined([r for r, _ in references])
    gaps = torch.cat([g for _, g in references])
    items = int(reference.patched.shape[0])
    figures = {
        "model": adapter.name,
        "query": query,
        "tasks": args.tasks,
        "queries": items,
        "layers": len(layers),
        "threads": args.threads,
        "bfloat16_sweep_s": round(fast_s, 2),
        "bfloat16_loop_s": round(loop_s, 2),
        "float32_sweep_equals_loop": agreement(_joined(fast32), _joined(loop32), items),
        "bfloat16_sweep_agrees_with_loop": agreement(_joined(fast), _joined(loop), items),
        "bfloat16_honesty": honesty(_joined(fast), _joined(loop), items, reference, gaps),
    }
    text = json.dumps(figures, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as stream:
            stream.write(text + "\n")


if __name__ == "__main__":
    main()
