"""Three of the reproduction's steps, timed alone, as `taskvec reproduce` runs them.

    .venv/bin/python -m bench.stages                      # embedded VLM, noto, layer 11
    .venv/bin/python -m bench.stages --repeats 2 --steps xpatch ensemble
    .venv/bin/python -m bench.stages --model DIR --tasks country_capital --seeds 1 --layer 1 --quick

  xpatch     the chosen layer's xPatch answers of six tasks under each seed's text-ICL vector
             (``patched_answers``: every seed's rows decode in one batch)
  ensemble   Fig. 8 for one style: instruction, exemplar and ensemble vectors of three seeds,
             patched into each task's test queries in one sweep (``ensemble_scores``)
  analyses   the analysis stage (logit-lens phase masses, top-1 tokens, decodings, similarity,
             embeddings) after the seed-1 vectors it borrows, as the reproduction hands them over

Inputs every step needs (vectors, delimiter states) are computed first and not timed. Prints the
seconds of each repeat and the process's peak RSS. To compare with an earlier commit, run the
same file with that commit's package first on the path
(``git worktree add /tmp/old <commit>; PYTHONPATH=/tmp/old/src python -m bench.stages``) if the
functions it calls have not changed their signatures since.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
from pathlib import Path

import torch

import taskvec
from bench.common import add_reproduction_arguments, load_for_reproduction, timed
from bench.table import TASKS
from taskvec.analysis.collect import unit_config
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts, patched_answers, task_vector_for
from taskvec.experiments.ensemble import ensemble_scores
from taskvec.models.shared_work import SharedWork
from taskvec.pipelines.analyze import AnalysisConfig, analyze
from taskvec.prompts.template import get_template
from taskvec.vectors.extract import last_token_states


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_reproduction_arguments(parser)
    parser.add_argument("--layer", type=int, default=11, help="the chosen layer (reproduce's: 11)")
    parser.add_argument("--steps", nargs="+", default=["xpatch", "ensemble", "analyses"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--tasks", nargs="+", default=TASKS, help="built-in tasks or task files")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument(
        "--quick", action="store_true", help="the analyses as taskvec reproduce --quick runs them"
    )
    args = parser.parse_args(argv)
    seeds = args.seeds
    adapter = load_for_reproduction(args)
    config = ExperimentConfig.create(
        model=adapter.name,
        tasks=args.tasks,
        spec="text-icl",
        query="image",
        style=args.style,
        template=args.template,
        answer_tokens=4,  # as reproduce asks them
    )
    tasks = [taskvec.load_task(name) for name in args.tasks]
    shared = SharedWork()
    units = {(t.name, s): UnitPrompts(t, config, s) for t in tasks for s in seeds}
    vectors = {key: task_vector_for(adapter, unit, shared) for key, unit in units.items()}
    for unit in units.values():
        last_token_states(adapter, [unit.instruction], config.budget(adapter), shared)
    if "analyses" in args.steps:  # the first seed's vectors of every specification, as the matrix leaves them
        for task in tasks:
            for spec in ("text-icl", "image-icl", "instruction"):
                spec_config = unit_config(
                    adapter, task, spec, get_template(args.template), args.style, 5, seeds[0], 1024
                )
                task_vector_for(adapter, UnitPrompts(task, spec_config, seeds[0]), shared)

    def xpatch() -> None:
        for task in tasks:
            patched_answers(adapter, task, config, {s: vectors[(task.name, s)] for s in seeds}, args.layer)

    def ensemble() -> None:
        for task in tasks:
            ensemble_scores(adapter, task, config, seeds, args.layer, shared=shared)

    def analyses() -> None:
        analysis = AnalysisConfig.create(
            model=adapter.name,
            tasks=args.tasks,
            template=args.template,
            style=args.style,
            seed=seeds[0],
            prompts=10 if args.quick else 50,
            lens_prompts=4 if args.quick else 20,
            layer=args.layer,
            embeddings=["pca"] if args.quick else ["tsne", "pca"],
        )
        with tempfile.TemporaryDirectory() as out:
            analyze(adapter, analysis, Path(out) / "analysis", show_progress=False, shared=shared)

    steps = {"xpatch": xpatch, "ensemble": ensemble, "analyses": analyses}
    threads = torch.get_num_threads()
    print(f"model {adapter.name}, {args.dtype}, {args.style}, layer {args.layer}, {threads} threads")
    for name in args.steps:
        seconds = [timed(steps[name])[0] for _ in range(args.repeats)]
        print(f"{name}: " + ", ".join(f"{s:.1f} s" for s in seconds), flush=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")


if __name__ == "__main__":
    main()
