"""What ending each answer where its line ends saves, by answer length.

    .venv/bin/python -m bench.answers                       # embedded VLM, 6 tasks, seed 1
    .venv/bin/python -m bench.answers --tokens 4 12 --repeats 3
    .venv/bin/python -m bench.answers --model DIR --tasks country_capital --tokens 2 --repeats 1  # smallest

The protocol's answers are one line (``line_complete``): a row stops generating there and leaves
the batch. This times ``generate_ids`` on the protocol's own test prompts of one seed, the bare
image queries (No Context) and the xBase prompts (text examples + image query), with and without
that rule, alternating, and prints the median seconds, the mean answer length and whether every
answer's line is the same both ways.
"""

from __future__ import annotations

import argparse
import statistics

import torch

import taskvec
from bench.common import add_reproduction_arguments, load_for_reproduction, timed
from bench.table import TASKS
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts
from taskvec.patching.patch import answer_text, generate_ids, line_complete


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_reproduction_arguments(parser)
    parser.add_argument(
        "--tokens", nargs="+", type=int, default=[4, 12], help="max new tokens (4: reproduce)"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tasks", nargs="+", default=TASKS, help="built-in tasks or task files")
    args = parser.parse_args(argv)
    adapter = load_for_reproduction(args)
    config = ExperimentConfig.create(
        model=adapter.name, tasks=args.tasks, query="image", style=args.style, template=args.template
    )
    units = [UnitPrompts(taskvec.load_task(task), config, 1) for task in args.tasks]
    sets = {
        "bare queries (No Context)": [q for u in units for q in u.test_queries],
        "xBase (text ICL -> image)": [p for u in units for p in u.test_base],
    }
    until = line_complete(adapter)
    generate_ids(adapter, sets["bare queries (No Context)"][:16], None, 2)  # warm-up
    print(f"model {adapter.name}, {args.dtype}, {torch.get_num_threads()} threads; median of {args.repeats}")
    print("\n| prompts | max new tokens | whole (s) | to the line's end (s) | mean length | lines equal |")
    print("|---|---:|---:|---:|---:|:---:|")
    for name, prompts in sets.items():
        for tokens in args.tokens:
            seconds: dict[str, list[float]] = {"whole": [], "line": []}
            answers = {}
            for _ in range(args.repeats):
                for label, rule in (("whole", None), ("line", until)):
                    elapsed, answers[label] = timed(
                        lambda p=prompts, n=tokens, r=rule: generate_ids(adapter, p, None, n, until=r)
                    )
                    seconds[label].append(elapsed)
            same = [answer_text(adapter, a) for a in answers["whole"]] == [
                answer_text(adapter, a) for a in answers["line"]
            ]
            length = sum(map(len, answers["line"])) / len(prompts)
            print(
                f"| {name}, {len(prompts)} | {tokens} | {statistics.median(seconds['whole']):.1f} "
                f"| {statistics.median(seconds['line']):.1f} | {length:.2f} | {same} |"
            )


if __name__ == "__main__":
    main()
