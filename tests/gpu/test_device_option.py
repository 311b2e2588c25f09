"""``--device``: a device this torch cannot use is one line before any model loads, on every
machine (CUDA's absence is simulated, so the test runs on GPU machines too)."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from taskvec.cli import app
from taskvec.errors import DeviceError
from taskvec.models.registry import LoadOptions


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def _never_load(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("a model was loaded before the device was checked")

    monkeypatch.setattr("taskvec.models.registry._load", refuse)


@pytest.mark.parametrize(
    "command", [["run", "-t", "country_capital"], ["reproduce", "--quick"], ["analyze"], ["align"]]
)
def test_cuda_without_cuda_is_one_line_before_loading(command, no_cuda, monkeypatch, tmp_path):
    _never_load(monkeypatch)
    result = CliRunner().invoke(app, [*command, "--device", "cuda", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: device 'cuda' needs CUDA"), result.output
    assert not (tmp_path / "out").exists()


def test_an_unknown_device_map_is_one_line_before_loading(monkeypatch, tmp_path):
    _never_load(monkeypatch)
    command = ["run", "-t", "country_capital", "--device-map", "nonsense", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unknown device map 'nonsense'"), result.output
    assert not (tmp_path / "out").exists()
    for placement in ("auto", "balanced", "sequential", "cpu"):
        assert LoadOptions(device_map=placement).device_map == placement


@pytest.mark.parametrize("command", [["run", "-t", "country_capital"], ["analyze"]])
def test_a_device_map_on_a_gpu_this_torch_cannot_use_is_one_line_before_loading(
    command, no_cuda, monkeypatch, tmp_path
):
    _never_load(monkeypatch)
    result = CliRunner().invoke(app, [*command, "--device-map", "cuda:0", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: device 'cuda:0' needs CUDA"), result.output
    assert not (tmp_path / "out").exists()


def test_a_device_map_on_a_gpu_the_machine_has_is_taken(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert LoadOptions(device_map="cuda:1").device_map == "cuda:1"
    with pytest.raises(DeviceError, match=r"2 GPU\(s\)"):
        LoadOptions(device_map="cuda:2")


def test_unknown_devices_and_out_of_range_gpus_are_refused(no_cuda):
    with pytest.raises(DeviceError, match="unknown device 'gpu0'"):
        LoadOptions(device="gpu0").torch_device()
    with pytest.raises(DeviceError, match="unsupported device 'meta'"):
        LoadOptions(device="meta").torch_device()
    with pytest.raises(DeviceError, match="needs CUDA"):
        LoadOptions(device="cuda:1").numerics()
    assert LoadOptions(device="cpu").torch_device() == torch.device("cpu")
    assert LoadOptions(device="cpu").numerics() == ""


def test_a_gpu_index_past_the_machines_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match=r"1 GPU\(s\), cuda:0..cuda:0"):
        LoadOptions(device="cuda:3").torch_device()
    assert LoadOptions(device="cuda:0", dtype="bfloat16").numerics() == "bfloat16+cuda"
    with pytest.raises(DeviceError, match="not both"):
        LoadOptions(device="cuda", device_map="auto").torch_device()


def test_plain_cuda_under_a_launcher_is_the_ranks_own_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert LoadOptions(device="cuda").torch_device() == torch.device("cuda", 2)
    assert LoadOptions(device="cuda:0").torch_device() == torch.device("cuda", 0)  # named: kept


def test_python_dash_m_taskvec_is_the_command():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "taskvec", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "Usage: taskvec" in done.stdout
