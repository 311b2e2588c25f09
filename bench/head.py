"""What an exact greedy token costs: full-vocabulary scans of the unembedding, on real sweep rows.

    .venv/bin/python -m bench.head --model embedded-vlm          # Gemma 3: 262k x 640 head
    .venv/bin/python -m bench.head --model embedded-vlm --units 3

Every prediction of the layer sweep is the argmax over the whole vocabulary of one hidden row, and
an exact argmax must rule out every token. This benchmark captures the rows the unembedding scans
in the sweeps of the first units (the protocol's own val queries and text-ICL vectors), then
times, per row and in chunks of 128 rows, the scans one could screen with:

  float32    ``F.linear`` in float32 (what the plain path and the peers compute)
  bfloat16   ``F.linear`` in bfloat16 (``greedy_head``'s screen)
  int8       ``torch._int_mm`` on per-row / per-token scaled int8 copies (where the CPU has it)
  greedy     ``greedy_head`` end to end (screen, bound, candidates, float32 check)

and counts, per row, the candidates each screen leaves under a rigorous rounding bound (the
rows whose true argmax could be any of them): for bfloat16 the bound ``greedy_head`` uses, for
int8 ``||h~|| ||w - w~|| + ||h - h~|| ||w~|| + ||h - h~|| ||w - w~||`` per token, for skipping
the scan by reusing the nearest other row's logits ``||h - h'|| ||w||``, and for a shorter scan
over the rows' k leading principal directions ``||h_rest|| ||w_rest||`` (rounding aside). A
screen is only as cheap as its scan plus the float32 work on its candidates.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from bench.common import add_model_arguments, build_units, setup, timed
from bench.peers import TASKS
from taskvec.models.head import greedy_head, head_screen, watching_head
from taskvec.patching.sweep import sweep

CHUNK = 128


def captured_rows(adapter, units) -> torch.Tensor:
    """The hidden rows whose greedy token the sweeps of ``units`` read: ``[rows, hidden]``, as
    ``greedy_head`` sees them (``watching_head``), so the prefix forwards that call the unembedding
    under ``unread_head`` add no rows."""
    rows: list[torch.Tensor] = []

    def read(x: torch.Tensor, path: str) -> None:
        if path != "logits":  # greedy_head's rows: screened, or plain where it has no screen
            rows.append(x.detach().clone())

    with watching_head(adapter.unembedding(), read):
        for unit in units:
            sweep(adapter, unit.queries, unit.vectors, list(range(adapter.num_layers)))
    return torch.cat(rows).float()


def per_row_ms(fn, rows: torch.Tensor) -> float:
    fn(rows[:CHUNK])  # warm-up
    seconds, _ = timed(lambda: [fn(rows[s : s + CHUNK]) for s in range(0, len(rows), CHUNK)])
    return 1000 * seconds / len(rows)


def int8_copy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per row: values and scales."""
    scale = x.abs().amax(-1).clamp_min(1e-30) / 127
    return (x / scale[:, None]).round().to(torch.int8), scale


def bf16_candidates(screen, rows: torch.Tensor) -> torch.Tensor:
    counts = []
    for s in range(0, len(rows), CHUNK):
        x = rows[s : s + CHUNK]
        x16 = x.to(torch.bfloat16)
        approx = F.linear(x16, screen.weight16).float()
        best = approx.max(-1).values
        reach = best - 2 * screen.bound(x, x16, best)
        counts.append((approx >= reach[:, None]).sum(-1))
    return torch.cat(counts)


def int8_candidates(weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    wq, ws = int8_copy(weight)
    w_rounded = wq.float() * ws[:, None]
    w_residue = (weight - w_rounded).norm(dim=-1)
    w_norm = w_rounded.norm(dim=-1)
    counts = []
    for s in range(0, len(rows), CHUNK):
        x = rows[s : s + CHUNK]
        xq, xs = int8_copy(x)
        x_rounded = xq.float() * xs[:, None]
        x_residue = (x - x_rounded).norm(dim=-1)[:, None]
        approx = F.linear(x_rounded, w_rounded)
        bound = (
            x_rounded.norm(dim=-1)[:, None] * w_residue
            + x_residue * w_norm
            + x_residue * w_residue
            + 2 * weight.shape[-1] * 2.0**-24 * x_rounded.norm(dim=-1)[:, None] * w_norm  # float32 sums
        )
        lower = (approx - bound).max(-1).values
        counts.append((approx + bound >= lower[:, None]).sum(-1))
    return torch.cat(counts)


def nearest_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the distance to its nearest other row and that row's index (among all rows: more
    than a sweep would have at hand, so a best case for reusing a neighbour's logits)."""
    distances = torch.cdist(rows, rows).fill_diagonal_(float("inf"))
    return distances.min(-1)


def neighbour_candidates(weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Candidates per row if a row skipped its scan and took the float32 logits of its nearest
    other row ``h'``: each token's logit moves by at most ``|h - h'| |w|``, so every token whose
    upper bound reaches the best lower bound stays a candidate."""
    nearest, neighbours = nearest_rows(rows)
    token_norms = weight.norm(dim=-1)
    counts = []
    for s in range(0, len(rows), CHUNK):
        logits = F.linear(rows[neighbours[s : s + CHUNK]], weight)
        reach = nearest[s : s + CHUNK, None] * token_norms
        lower = (logits - reach).max(-1).values
        counts.append((logits + reach >= lower[:, None]).sum(-1))
    return torch.cat(counts)


def subspace_candidates(weight: torch.Tensor, rows: torch.Tensor, dims: int) -> torch.Tensor:
    """Candidates per row if a scan read only ``dims`` leading principal directions of the rows
    (fitted on the even rows, counted on the odd ones, so out of sample) and bounded the rest of
    each logit by ``|h_rest| |w_rest|``: a scan ``dims / hidden`` as long, exact only where the
    bound leaves few candidates."""
    fit, held_out = rows[0::2], rows[1::2]
    basis = torch.linalg.svd(fit, full_matrices=False).Vh[:dims]  # [dims, hidden]
    projected = weight @ basis.T  # [vocab, dims]
    rest_norms = (weight.norm(dim=-1) ** 2 - projected.norm(dim=-1) ** 2).clamp_min(0).sqrt()
    counts = []
    for s in range(0, len(held_out), CHUNK):
        x = held_out[s : s + CHUNK]
        coordinates = x @ basis.T
        x_rest = (x.norm(dim=-1) ** 2 - coordinates.norm(dim=-1) ** 2).clamp_min(0).sqrt()
        partial = F.linear(coordinates, projected)
        reach = x_rest[:, None] * rest_norms
        lower = (partial - reach).max(-1).values
        counts.append((partial + reach >= lower[:, None]).sum(-1))
    return torch.cat(counts)


def best_logit_gaps(weight: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Per row, how far the best float32 logit lies above the second: what a bound must beat."""
    best_two = torch.cat(
        [F.linear(rows[s : s + CHUNK], weight).topk(2).values for s in range(0, len(rows), CHUNK)]
    )
    return best_two[:, 0] - best_two[:, 1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--units", type=int, default=2, help="(task, seed) units whose sweep rows are used")
    args = parser.parse_args(argv)
    adapter, query = setup(args)
    units = build_units(adapter, args, query, TASKS[: args.units], [1])
    rows = captured_rows(adapter, units)
    head = adapter.unembedding()
    weight = head.weight.detach().float()
    screen = head_screen(head)
    print(
        f"model {adapter.name}: head {tuple(weight.shape)}; {len(rows)} sweep rows of {len(units)} units; "
        f"torch threads {torch.get_num_threads()}; chunks of {CHUNK} rows"
    )

    def greedy(x):
        with greedy_head(head) as reader:
            head(x)
        return reader.last()

    timings = {
        "float32 scan": per_row_ms(lambda x: F.linear(x, weight), rows),
        "bfloat16 scan": per_row_ms(lambda x: F.linear(x.bfloat16(), weight.bfloat16()), rows)
        if screen is None
        else per_row_ms(lambda x: F.linear(x.bfloat16(), screen.weight16), rows),
        "greedy_head (exact)": per_row_ms(greedy, rows),
    }
    wq_t = int8_copy(weight)[0].t().contiguous()
    try:
        timings["int8 scan (_int_mm)"] = per_row_ms(lambda x: torch._int_mm(int8_copy(x)[0], wq_t), rows)
    except RuntimeError as error:  # no int8 matmul for this CPU / build
        print(f"int8 scan unavailable: {error}")
    exact = torch.cat([F.linear(rows[s : s + CHUNK], weight).argmax(-1) for s in range(0, len(rows), CHUNK)])
    same = bool(torch.equal(greedy(rows), exact))
    print("\n| scan | ms per row |")
    print("|---|---:|")
    for name, ms in timings.items():
        print(f"| {name} | {ms:.2f} |")
    print(f"\ngreedy_head ids equal the float32 argmax on every row: {same}")
    quantiles = torch.tensor([0.5, 0.9, 0.99])
    for name, counts in (
        ("bfloat16 (greedy_head's bound)", bf16_candidates(screen, rows) if screen is not None else None),
        ("int8 (rigorous bound)", int8_candidates(weight, rows)),
        ("nearest other row's logits, no scan (rigorous bound)", neighbour_candidates(weight, rows)),
        *(
            (
                f"{k} of {weight.shape[-1]} principal directions (rigorous bound, held-out rows)",
                subspace_candidates(weight, rows, k),
            )
            for k in (128, 256, 384, 512)
        ),
    ):
        if counts is not None:
            q = counts.float().quantile(quantiles).tolist()
            spread = f"median {q[0]:.0f}, p90 {q[1]:.0f}, p99 {q[2]:.0f}, max {int(counts.max())}"
            print(f"candidates per row, {name}: {spread}")
    distance, norm = nearest_rows(rows)[0].median().item(), rows.norm(dim=-1).median().item()
    print(f"distance to the nearest other row: median {distance:.1f} (row norms: median {norm:.1f})")
    gaps = best_logit_gaps(weight, rows).quantile(quantiles).tolist()
    print(
        f"gap between the two best float32 logits: median {gaps[0]:.2f}, p90 {gaps[1]:.2f}, p99 {gaps[2]:.2f}"
    )


if __name__ == "__main__":
    main()
