"""``taskvec reproduce --quick`` on one process against ranks of a launch (torchrun, gloo).

    .venv/bin/python -m bench.ranks                      # 1 x 2 threads, 1 x 1 thread, 2 ranks x 1 thread
    .venv/bin/python -m bench.ranks --tasks country_capital country_currency
    .venv/bin/python -m bench.ranks --smallest --model DIR --tasks country_capital --style noto

Each configuration runs the whole command in a fresh folder as a subprocess and reports its wall
time, the CPU time of all its processes, the units it wrote (protocol units of every condition and
of the transfer, and the analysis pieces) and units per second over the whole command (model
loads, assembly and report included), and the machine's load average before and after it (other
work on the machine shows up there). It checks that every configuration of one thread per process
wrote the same tables as the first (``tests/pipelines/test_ranks.py`` is the test of it).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: (name, ranks, threads per process)
CONFIGURATIONS = [
    ("1 process x 2 threads", 1, 2),
    ("1 process x 1 thread", 1, 1),
    ("2 ranks x 1 thread", 2, 1),
]


def command(ranks: int, args: list[str], out: Path) -> list[str]:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    head = launcher if ranks > 1 else [sys.executable]
    return [*head, "-m", "taskvec", "reproduce", "--quick", *args, "--out", str(out)]


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child process (all ranks of a launch)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def units_written(out: Path) -> int:
    return len(list(out.glob("*/*/units/*__seed*.json"))) + len(
        list(out.glob("analysis/units/*.safetensors"))
    )


def tables(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes().replace(str(out).encode(), b"<out>")
        for p in sorted(out.rglob("*"))
        if p.suffix in {".csv", ".jsonl"}
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=None, help="built-in tasks (default: all six)")
    parser.add_argument("--model", default=None, help="as taskvec reproduce --model (default: its own)")
    parser.add_argument("--style", nargs="+", default=None, help="as taskvec reproduce --style")
    parser.add_argument(
        "--smallest", action="store_true", help=f"only the configuration {CONFIGURATIONS[1][0]!r}"
    )
    args = parser.parse_args(argv)
    extra = ["--tasks", ",".join(args.tasks)] if args.tasks else []
    extra += ["--model", args.model] if args.model else []
    extra += [option for style in args.style or [] for option in ("--style", style)]
    configurations = CONFIGURATIONS[1:2] if args.smallest else CONFIGURATIONS
    print(f"{os.cpu_count()} CPUs; reproduce --quick {' '.join(extra)}")
    columns = ["configuration", "wall (s)", "CPU (s)", "units", "units/s", "load before", "load after"]
    print("| " + " | ".join([*columns, "tables as 1 thread"]) + " |")
    print("|---|---:|---:|---:|---:|---|---|---|")
    reference = None
    with tempfile.TemporaryDirectory(prefix="bench-ranks-") as root:
        for name, ranks, threads in configurations:
            out = Path(root) / name.replace(" ", "_")
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            before, cpu_before = os.getloadavg(), _children_cpu()
            started = time.perf_counter()
            done = subprocess.run(command(ranks, extra, out), env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"{name}: taskvec reproduce exited {done.returncode}\n{done.stderr[-3000:]}")
            seconds = time.perf_counter() - started
            after, cpu = os.getloadavg(), _children_cpu() - cpu_before
            units = units_written(out)
            same = "-"
            if threads == 1:
                reference = reference or tables(out)
                same = "yes" if tables(out) == reference else "NO"
            load = [" ".join(f"{x:.1f}" for x in avg) for avg in (before, after)]
            rate = units / seconds
            cells = [name, f"{seconds:.1f}", f"{cpu:.0f}", str(units), f"{rate:.3f}", *load, same]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
