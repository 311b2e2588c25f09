"""What a reproduction computes, stage by stage, and how long that would take at the matmul rate.

    .venv/bin/python -m bench.arithmetic --quick                 # the smoke run (about 3 minutes)
    .venv/bin/python -m bench.arithmetic --out /tmp/arithmetic   # the whole reproduction
    .venv/bin/python -m bench.arithmetic --smallest --model DIR  # the smallest run (its CI test)

Runs ``taskvec reproduce`` on the embedded VLM into a fresh folder (an existing one is refused:
a resumed run would skip its work) with counters on the decoder layers and the unembedding, and
prints, per stage and per condition of the matrix, the seconds it took, the arithmetic it did and
the rate it reached; then this machine's plain matmul rates, timed right after (the decoder
layer's largest shape at 1,024 rows; the head, 128 rows x the whole vocabulary, as the bfloat16
screen and in the model's dtype), and the time the same arithmetic would take at those rates. That
time is a floor for the reproduction as the protocol defines it: it only shrinks with less
arithmetic. Last, the rate the model's own forward reaches on the reproduction's longest prompts
(image-ICL xBase prompts, whole batches, the head unread: norms, activations and attention
included), and the time the arithmetic would take with every decoder step at that rate: what a
run made of nothing but such forwards would need.

Counted from shapes (``common.model_shapes``, ``common.layer_flops``), 2 FLOPs per multiply-add:

- decoder: every token a decoder layer runs, padding included: 2 x the layer's matmul weights, plus
  4 x the attention width x the positions it attends to;
- head: every row the unembedding scans, 2 x hidden x vocabulary: rows of ``greedy_head``'s
  bfloat16 screen, and plain rows in the model's dtype (the logit lens, the plain argmax, every
  row of a bfloat16 model); rows under
  ``unread_head`` compute nothing and are not counted.

Before the run the counters are checked against ``torch.utils.flop_counter`` on one small forward.

Not counted: the vision encoder, norms and elementwise work, and the float32 logits of
``greedy_head``'s few candidates.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import taskvec
from bench.common import add_rate_argument, layer_flops, matmul_rate, model_shapes
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts
from taskvec.models.adapter import ModelAdapter
from taskvec.models.cache_keyword import CACHE_KEYWORD, cache_of
from taskvec.models.head import greedy_head, unread_head, watching_head
from taskvec.models.registry import LoadOptions
from taskvec.pipelines.reproduce import ReproduceConfig, reproduce
from taskvec.report.reproduce import write_report


class Tally:
    """Running totals of what the model computed, and snapshots of them at named moments."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self.marks: list[tuple[str, float, Counter[str]]] = []

    def mark(self, name: str) -> None:
        self.marks.append((name, time.perf_counter(), Counter(self.totals)))

    def spans(self) -> list[tuple[str, float, Counter[str]]]:
        """(name, seconds, counts) between each ``start X`` and its ``end X``."""
        opened: dict[str, tuple[float, Counter[str]]] = {}
        spans = []
        for name, moment, totals in self.marks:
            kind, _, what = name.partition(" ")
            if kind == "start":
                opened[what] = (moment, totals)
            else:
                begun, before = opened.pop(what)
                spans.append((what, moment - begun, totals - before))
        return spans


@contextmanager
def counting(adapter: ModelAdapter, tally: Tally):
    """Count the decoder's token steps and the head's rows while the block runs."""

    def layer_step(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        batch, tokens = hidden.shape[:2]
        mask = kwargs.get("attention_mask")
        if isinstance(mask, dict):  # per attention type (full, sliding): the same length
            mask = next(iter(mask.values()))
        if isinstance(mask, torch.Tensor):
            attended = mask.shape[-1]
        else:
            cache = kwargs.get(CACHE_KEYWORD)
            attended = tokens + (cache.get_seq_length() if cache is not None else 0)
        tally.totals["layer tokens"] += batch * tokens
        tally.totals["attended positions"] += batch * tokens * attended

    def head_rows(rows, path):
        tally.totals["head rows bfloat16" if path == "screened" else "head rows plain"] += rows.shape[0]

    handles = [layer.register_forward_pre_hook(layer_step, with_kwargs=True) for layer in adapter.layers]
    try:
        with watching_head(adapter.unembedding(), head_rows):
            yield
    finally:
        for handle in handles:
            handle.remove()


def marker(tally: Tally):
    """A reproduction's stage observer that marks the start and end of each stage and of each
    condition of its matrix (and of the transfer) in ``tally``."""

    def observe(moment, stage, run):
        tally.mark(f"{moment} {f'  {run}' if run else stage}")

    return observe


def gflop(counts: Counter[str], shapes: dict) -> dict[str, float]:
    """Decoder, screened head and plain head GFLOP of ``counts``."""
    decoder = layer_flops(shapes, counts["layer tokens"], counts["attended positions"])
    return {
        "decoder": decoder / 1e9,
        "head bfloat16": 2 * shapes["head"] * counts["head rows bfloat16"] / 1e9,
        "head plain": 2 * shapes["head"] * counts["head rows plain"] / 1e9,
    }


@torch.no_grad()
def check_counts(adapter: ModelAdapter, shapes: dict) -> None:
    """The counters against ``FlopCounterMode`` on one forward of a few prompts and one greedy step:
    their matmul FLOPs must agree (FlopCounterMode leaves out attention on the CPU)."""
    template = taskvec.get_template("spaced")
    demos = [("France", "Paris"), ("Peru", "Lima")]
    encoded = adapter.encode(
        [template.icl(demos, query) for query in ("Japan", "Kenya", "the Czech Republic")]
    )
    tally = Tally()
    with counting(adapter, tally), FlopCounterMode(display=False) as counter:
        output = adapter.forward(encoded, use_cache=True)
        grown = adapter.grow(encoded, output.logits[:, -1].argmax(-1, keepdim=True))
        with greedy_head(adapter.unembedding()):
            adapter.forward(grown, cache=cache_of(output), last_only=True)
    work = gflop(tally.totals, shapes)
    attention = layer_flops(shapes, 0, tally.totals["attended positions"]) / 1e9
    counted, measured = sum(work.values()) - attention, counter.get_total_flops() / 1e9
    if abs(counted - measured) > 0.01 * measured:
        sys.exit(f"the counters disagree with FlopCounterMode: {counted:.3f} against {measured:.3f} GFLOP")
    print(f"counters checked: {counted:.3f} GFLOP of matmuls counted, {measured:.3f} by FlopCounterMode")


@torch.no_grad()
def forward_rate(
    adapter: ModelAdapter, shapes: dict, config: ReproduceConfig, sizes: tuple[int, ...] = (25, 50, 100)
) -> tuple[float, str]:
    """The best decoder GFLOP/s the model's own forward reaches on the reproduction's longest
    prompts (the first task's image-ICL xBase prompts in the training style), in batches of each
    of ``sizes`` prompts, the head unread; and what was run."""
    experiment = ExperimentConfig.create(
        model=adapter.name,
        tasks=config.tasks[:1],
        spec="image-icl",
        query="image",
        style=config.styles[0],
        template=config.template,
    )
    prompts = UnitPrompts(taskvec.load_task(config.tasks[0]), experiment, config.seeds[0]).test_base
    best = 0.0
    with unread_head(adapter.unembedding()):
        for size in sizes:
            encoded = adapter.encode(prompts[:size])
            tally = Tally()
            with counting(adapter, tally):
                adapter.forward(encoded)  # also the warm-up
            work = gflop(tally.totals, shapes)["decoder"]
            for _ in range(3):
                start = time.perf_counter()
                adapter.forward(encoded)
                best = max(best, work / (time.perf_counter() - start))
    what = f"{config.tasks[0]}'s image-ICL xBase prompts ({config.styles[0]}), batches of {sizes}"
    return best, what


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded-vlm")
    parser.add_argument("--quick", action="store_true", help="the smoke run (taskvec reproduce --quick)")
    parser.add_argument(
        "--smallest",
        action="store_true",
        help="the smallest run: --quick on the first task and style only, one small batch forward",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="a fresh report folder (default: a temporary one)"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--dtype", default="float32", help="as taskvec reproduce --dtype")
    add_rate_argument(parser)
    args = parser.parse_args(argv)
    if args.out is not None and args.out.exists():
        sys.exit(f"{args.out} exists: a resumed reproduction would skip work; give a fresh folder")
    torch.set_num_threads(args.threads)

    adapter = taskvec.load_model(args.model, LoadOptions(dtype=args.dtype))
    shapes = model_shapes(adapter)
    check_counts(adapter, shapes)
    config = ReproduceConfig.create(model=args.model, quick=args.quick or args.smallest)
    if args.smallest:
        config = ReproduceConfig.create(
            model=args.model, quick=True, tasks=config.tasks[:1], styles=config.styles[:1]
        )
    seconds = args.rate_seconds
    tally = Tally()
    out = args.out or Path(f"/tmp/taskvec-arithmetic-{int(time.time())}")
    begun = time.perf_counter()
    with counting(adapter, tally):
        write_report(reproduce(config, out, adapter=adapter, show_progress=False, observer=marker(tally)))
    wall = time.perf_counter() - begun

    hidden, vocab = adapter.hidden_size, adapter.vocab_size
    rates = {  # GFLOP/s of plain matmuls, timed after the run
        "decoder float32": matmul_rate(1024, hidden, 2048, seconds) / 1e9,
        "decoder bfloat16": matmul_rate(1024, hidden, 2048, seconds, torch.bfloat16) / 1e9,
        "head bfloat16": matmul_rate(128, hidden, vocab, seconds, torch.bfloat16) / 1e9,
    }
    if args.dtype != "bfloat16":  # the plain head rows' own rate
        dtype = getattr(torch, args.dtype)
        rates[f"head {args.dtype}"] = matmul_rate(128, hidden, vocab, seconds, dtype) / 1e9
    decoder_rate = rates[f"decoder {args.dtype}"]
    sizes = (2,) if args.smallest else (25, 50, 100)
    model_rate, model_forwards = forward_rate(adapter, shapes, config, sizes)

    def at_rates(work: dict[str, float], decoder: float = decoder_rate) -> float:
        """Seconds ``work`` takes with the decoder at ``decoder`` GFLOP/s and the head's rows at
        the plain rates of the head's shape (the screen in bfloat16, plain rows in the model's dtype)."""
        return (
            work["decoder"] / decoder
            + work["head plain"] / rates[f"head {args.dtype}"]
            + work["head bfloat16"] / rates["head bfloat16"]
        )

    print(
        f"{args.model} ({args.dtype}), {'--quick' if config.quick else 'full'} reproduction into {out}, "
        f"{torch.get_num_threads()} threads: {wall:.1f} s wall, peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB"
    )
    print(
        "plain matmuls right after, GFLOP/s: "
        + ", ".join(f"{name} {rate:.0f}" for name, rate in rates.items())
        + f" (decoder: [1024 x {adapter.hidden_size}] @ [{adapter.hidden_size} x 2048]; head: "
        f"[128 x {adapter.hidden_size}] @ [{adapter.hidden_size} x {adapter.vocab_size}])"
    )
    print(
        f"the model's own forward ({model_forwards}, head unread): at best {model_rate:.0f} "
        "GFLOP/s in the decoder\n"
    )
    print(
        "| stage | seconds | decoder GFLOP | head GFLOP (bf16 screen / plain) | GFLOP/s | s at matmul rates |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    totals: Counter[str] = Counter()
    for name, seconds, counts in tally.spans():
        work = gflop(counts, shapes)
        print(
            f"| {name} | {seconds:.1f} | {work['decoder']:,.0f} | {work['head bfloat16']:,.0f} / "
            f"{work['head plain']:,.0f} | {sum(work.values()) / seconds:.0f} | {at_rates(work):.1f} |"
        )
        if not name.startswith(" "):  # conditions are inside the matrix
            totals += counts
    work = gflop(totals, shapes)
    print(
        f"\nall stages: {sum(work.values()):,.0f} GFLOP ({work['decoder']:,.0f} decoder, "
        f"{work['head bfloat16']:,.0f} bfloat16 screen head, {work['head plain']:,.0f} plain head) "
        f"in {wall:.1f} s = {sum(work.values()) / wall:.0f} GFLOP/s; at the plain matmul rates "
        f"{at_rates(work) / 60:.1f} min, with the decoder's at the bfloat16 rate "
        f"{at_rates(work, rates['decoder bfloat16']) / 60:.1f} min; with every decoder step at the "
        f"model's best forward rate and the head at its plain rates {at_rates(work, model_rate) / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
