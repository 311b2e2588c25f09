"""``bench/gpu.py`` at tiny shapes on the CPU, so a refactor cannot break the GPU check silently
(it runs for real only where a GPU is lent)."""

from __future__ import annotations

import json
import sys

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


def test_the_gpu_checks_command_line_run_reads_its_folder_back_the_second_time():
    row = gpu.check_cli("cpu", smoke=True)
    assert row.error is None, row.facts.get("stderr_tail")
    assert row.facts["exit_code"] == 0 and row.facts["again_read_back"]
    assert not row.facts["again_loaded_weights"]
    assert row.facts["memory_budget_mb"] == 1024  # given none, the budget sized to the device
