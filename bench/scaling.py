"""How the taskvec sweep's time grows with the number of queries and the prompt length.

    .venv/bin/python -m bench.scaling                    # 30/100/300 queries; 10/100/600-token prompts

Each row sweeps every layer of the model for its queries (one task vector, country_capital seed 1)
and compares the time with the floor's prediction (``common.floor_flops``): if the engine runs at
the floor, seconds per floor-GFLOP stay flat across rows. Prompts of a given length are the bare
query behind a neutral filler text (a LLaVA image is ~600 tokens of prefix).
"""

from __future__ import annotations

import argparse
import resource

import torch

from bench.common import add_model_arguments, build_units, floor_flops, setup, timed, token_lengths
from taskvec.patching.sweep import sweep
from taskvec.prompts.template import get_template
from taskvec.tasks.registry import BUILTIN_TASKS, load_task

TASKS = list(BUILTIN_TASKS)
FILLER = "The notes below were written by a careful reader who checks every fact twice before use. "


def queries_of(count: int, template) -> list:
    """``count`` bare text queries, cycling through the items of the six tasks."""
    items = [item for name in TASKS for item in (lambda t: t.val + t.test)(load_task(name))]
    return [template.query(items[i % len(items)].input) for i in range(count)]


def with_prefix(adapter, queries, tokens: int) -> list:
    """Each query behind as much filler as makes it about ``tokens`` tokens long."""
    out = []
    for query in queries:
        text = "".join(query)
        filler = ""
        while int(adapter.encode([[filler + text]]).attention_mask.sum()) < tokens:
            filler += FILLER
        words = filler.split(" ")
        while words and int(adapter.encode([[" ".join(words) + text]]).attention_mask.sum()) > tokens:
            words.pop()
        out.append([" ".join(words) + text])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--counts", nargs="+", type=int, default=[30, 100, 300])
    parser.add_argument("--lengths", nargs="+", type=int, default=[10, 100, 600])
    parser.add_argument("--length-queries", type=int, default=30, help="queries per prompt-length row")
    args = parser.parse_args(argv)
    args.query = "text"  # prompt lengths are set with text; image prefixes are one length only
    adapter, _ = setup(args)
    template = get_template(args.template)
    vectors = build_units(adapter, args, "text", ["country_capital"], [1])[0].vectors
    layers = list(range(adapter.num_layers))
    cases = [(f"{n} queries", queries_of(n, template)) for n in args.counts]
    base = queries_of(args.length_queries, template)
    cases += [(f"{args.length_queries} x ~{n} tokens", with_prefix(adapter, base, n)) for n in args.lengths]
    print(f"model {adapter.name}, {adapter.num_layers} layers; torch threads {torch.get_num_threads()}")
    print("\n| case | mean tokens | seconds | floor GFLOP | s / floor-GFLOP | time ratio | floor ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    first = {}
    for name, queries in cases:
        lengths = token_lengths(adapter, queries)
        floor = floor_flops(adapter, lengths, len(layers)) / 1e9
        seconds, _ = timed(lambda q=queries: sweep(adapter, q, vectors, layers))
        group = "count" if "queries" in name and " x " not in name else "length"
        ref = first.setdefault(group, (seconds, floor))
        print(
            f"| {name} | {sum(lengths) / len(lengths):.0f} | {seconds:.1f} | {floor:.1f} | "
            f"{seconds / floor:.3f} | {seconds / ref[0]:.1f}x | {floor / ref[1]:.1f}x |",
            flush=True,
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB on Linux
    print(f"peak RSS of this process {peak:.0f} MB")


if __name__ == "__main__":
    main()
