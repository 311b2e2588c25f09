"""Every benchmark runs end to end at its smallest size, on the tiny random LLaVA of the family
tests saved as a model folder (loaded by path, as a named model would be), so a change to the
package that breaks a script fails here. Only that each finishes and reports what it should is
checked; the figures of a tiny random model mean nothing. The scripts run in this process (an
interpreter start costs more than most of them), except ``bench.ranks``, which launches its own
``taskvec reproduce`` and so starts first and runs beside the others."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.families.llava import build_llava
from helpers.reliability import write_tiny_task

from bench import answers, arithmetic, gpu, head, honesty, peers, scaling, stages, table

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def model(folder) -> str:
    adapter = build_llava()
    path = folder / "tiny-llava"
    adapter.model.save_pretrained(path)
    adapter.processor.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def task(folder) -> str:
    """Seven validation items (five demonstrations and a query) and three test items."""
    return str(write_tiny_task(folder / "tasks"))


@pytest.fixture(scope="module")
def ranks(folder, model):
    """``bench.ranks --smallest`` started in the background; the process and its log."""
    log = folder / "ranks.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "bench.ranks", "--smallest", "--model", model]
    command += ["--tasks", "country_capital", "--style", "noto"]
    with log.open("w") as stream:  # a file, not a pipe: a full pipe would stall the child
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stream, stderr=subprocess.STDOUT)
    yield process, log
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(autouse=True)
def torch_threads():
    """The scripts set torch's thread count; the rest of the session keeps its own."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run(capsys, module, *options: str) -> str:
    module.main([str(option) for option in options])
    return capsys.readouterr().out


def test_ranks_starts(ranks):
    """Requested first, so the launch runs while the in-process scripts below do."""
    process, _ = ranks
    assert process.pid > 0


def test_head(capsys, model):
    out = run(capsys, head, "--model", model, "--units", "1", "--threads", "1")
    assert "greedy_head ids equal the float32 argmax on every row: True" in out
    assert "| bfloat16 scan |" in out and "candidates per row, int8 (rigorous bound)" in out


def test_peers_without_nnsight_says_it_skips_that_peer(capsys, model, task):
    out = run(capsys, peers, "--model", model, "--tasks", task, "--seeds", "1", "--threads", "1",
              "--rate-seconds", "0.05")  # fmt: skip
    assert "| paper |" in out and "| taskvec |" in out and "(all)" in out  # the paper's loop agrees
    if importlib.util.find_spec("nnsight") is None:
        assert "nnsight is not installed (the `bench` extra): the nnsight peer is skipped" in out
        assert "| nnsight |" not in out
    else:  # `make test` installs the bench extra: nnsight's patching gives taskvec's answers
        assert re.search(r"\| nnsight \| [\d.]+ \| [\d.]+x \| (\d+)/\1 \(all\) \|", out), out
    assert "taskvec executed" in out


def test_scaling(capsys, model):
    out = run(capsys, scaling, "--model", model, "--counts", "3", "--lengths", "8", "--length-queries", "2",
              "--threads", "1")  # fmt: skip
    assert "| 3 queries |" in out and "| 2 x ~8 tokens |" in out


def test_table_times_every_protocol_step(capsys, model, task):
    out = run(capsys, table, "--model", model, "--tasks", task, "--seeds", "1", "--threads", "1",
              "--rate-seconds", "0.05")  # fmt: skip
    steps = ["task vector", "val sweep", "xBase answers", "No Context answers"]
    for step in [*steps, "xPatch answers (chosen layer)"]:
        line = next(x for x in out.splitlines() if x.startswith(step))
        assert line.split()[len(step.split())] == "1", line  # called once: one task, one seed
    assert "total (wall)" in out and "test accuracy, paper metric" in out


def test_stages(capsys, model, task):
    out = run(capsys, stages, "--model", model, "--tasks", task, "--seeds", "1", "--layer", "1", "--quick",
              "--threads", "1")  # fmt: skip
    for step in ("xpatch: ", "ensemble: ", "analyses: "):
        assert step in out


def test_answers(capsys, model, task):
    out = run(capsys, answers, "--model", model, "--tasks", task, "--tokens", "2", "--repeats", "1",
              "--threads", "1")  # fmt: skip
    rows = [x for x in out.splitlines() if x.startswith("| bare queries") or x.startswith("| xBase")]
    assert len(rows) == 2 and all(row.endswith("| True |") for row in rows)  # the same lines both ways


def test_gpu_needs_cuda_at_the_papers_sizes_and_runs_tiny_shapes_on_the_cpu(capsys, folder):
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as refused:
            gpu.main(["--models", "llava"])
        assert "needs CUDA" in str(refused.value) and "--smoke" in str(refused.value)
    out = run(capsys, gpu, "--smoke", "--device", "cpu", "--queries", "2", "--loop-queries", "1",
              "--exact-queries", "1", "--out", folder / "gpu.json")  # fmt: skip
    for name in ("llava-smoke", "idefics2-smoke", "qwen2-vl-smoke"):
        row = next(x for x in out.splitlines() if x.startswith(f"| {name} |"))
        assert "| 1.00/1.00 |" in row  # float32: the sweep equals the paper's loop
    assert (folder / "gpu.json").is_file()


def test_arithmetic_splits_a_reproduction_by_stage(capsys, model, folder):
    out = run(capsys, arithmetic, "--smallest", "--model", model, "--out", folder / "arithmetic",
              "--threads", "1", "--rate-seconds", "0.05")  # fmt: skip
    assert "counters checked" in out
    rows = {x.split("|")[1] for x in out.splitlines() if x.startswith("| ")}
    for stage in ("matrix", "ensemble", "conflict", "analysis", "  text-icl__image-noto", "  text-icl__text"):
        assert f" {stage} " in rows, stage
    assert (folder / "arithmetic" / "report.md").is_file()


def test_ranks_writes_its_row(ranks):
    process, log = ranks
    assert process.wait(timeout=600) == 0, log.read_text()[-3000:]
    row = next(x for x in log.read_text().splitlines() if x.startswith("| 1 process x 1 thread |"))
    assert row.endswith("| yes |")  # its tables, the reference of the others


def test_honesty(capsys, model, task, folder):
    out = folder / "honesty.json"
    printed = run(capsys, honesty, "--model", model, "--tasks", task, "--queries", "2", "--out", out)
    figures = json.loads(out.read_text())
    assert json.loads(printed) == figures
    assert figures["float32_sweep_equals_loop"] == {"patched": 1.0, "clean": 1.0}
    assert 0 <= figures["bfloat16_honesty"]["loop_disagreement"] <= 1
    assert figures["bfloat16_honesty"]["items"] == 2 * (figures["layers"] + 1)
