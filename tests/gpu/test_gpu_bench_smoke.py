"""``bench/gpu.py`` at tiny shapes on the CPU, so a refactor cannot break the GPU check silently
(it runs for real only where a GPU is lent)."""

from __future__ import annotations

import json
import sys

import pytest

from bench import gpu


def test_the_gpu_check_runs_at_tiny_shapes_and_finds_the_sweep_exact_in_float32(tmp_path, monkeypatch):
    out = tmp_path / "gpu.json"
    argv = ["gpu", "--smoke", "--queries", "3", "--loop-queries", "2", "--exact-queries", "2", "--no-nnsight"]
    monkeypatch.setattr(sys, "argv", [*argv, "--models", "llava", "qwen2_vl", "--out", str(out)])
    gpu.main()
    rows = json.loads(out.read_text())["rows"]
    assert [row["model"] for row in rows] == ["llava", "qwen2_vl"]
    for row in rows:
        facts = row["facts"]
        assert row["error"] is None
        assert facts["float32_sweep_equals_loop"] == {"patched": 1.0, "clean": 1.0}
        assert facts["loop_extrapolated"] is True and facts["queries"] == 3
        assert 0 <= facts["bfloat16_honesty"]["taskvec_disagreement"] <= 1
        assert facts["sized_budget_mb"] == 1024  # on a CPU; on a GPU, most of its free memory


def test_the_gpu_checks_nnsight_peer_patches_as_the_paper_loop_does(tmp_path, monkeypatch):
    """The nnsight peer of the GPU check, at tiny shapes on the CPU (the `bench` extra, which
    `make test` installs): one trace per layer over all queries gives the loop's answers."""
    pytest.importorskip("nnsight")
    out = tmp_path / "gpu.json"
    argv = ["gpu", "--smoke", "--queries", "2", "--loop-queries", "2", "--exact-queries", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--models", "llava", "--out", str(out)])
    gpu.main()
    (row,) = json.loads(out.read_text())["rows"]
    assert row["error"] is None and "nnsight_error" not in row["facts"]
    assert row["facts"]["nnsight_agreement_with_loop_bf16"] == {"patched": 1.0, "clean": 1.0}


def test_the_gpu_checks_command_line_run_reads_its_folder_back_the_second_time():
    row = gpu.check_cli("cpu", smoke=True)
    assert row.error is None, row.facts.get("stderr_tail")
    assert row.facts["exit_code"] == 0 and row.facts["again_read_back"]
    assert not row.facts["again_loaded_weights"]
    assert row.facts["memory_budget_mb"] == 1024  # given none, the budget sized to the device


def test_a_step_failing_late_keeps_the_figures_measured_before_it(tmp_path, monkeypatch):
    """A failure in the float32 stage replaced the model's row by its error, losing the bfloat16
    timings the one device session had paid for; the JSON was written only at the very end."""
    out = tmp_path / "gpu.json"

    def failing(*_args, **_kwargs):
        raise RuntimeError("the float32 reference ran out of memory")

    monkeypatch.setattr(gpu, "float32_reference", failing)
    argv = ["gpu", "--smoke", "--queries", "2", "--loop-queries", "1", "--exact-queries", "1", "--no-nnsight"]
    monkeypatch.setattr(sys, "argv", [*argv, "--models", "llava", "--out", str(out)])
    try:
        gpu.main()
    except SystemExit as stopped:
        assert stopped.code == 1
    (row,) = json.loads(out.read_text())["rows"]
    assert "ran out of memory" in row["error"]
    assert row["facts"]["taskvec_s"] and row["facts"]["agreement_with_loop_bf16"]
    assert row["facts"]["float32_sweep_equals_loop"] == {"patched": 1.0, "clean": 1.0}
