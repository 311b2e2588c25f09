"""Faults of the environment and odd option values: each is one red line and exit code 2 (or its own
error class in the library), checked before the model loads wherever it can be; never a traceback,
never a silently wrong number."""

from __future__ import annotations

import errno
import json
import math
import os
import socket
import stat
import tempfile
import time
from pathlib import Path

import pytest
import torch
from helpers.reliability import synthetic_items, write_task
from typer.testing import CliRunner

from taskvec.cli import app
from taskvec.errors import ModelSpecError, TaskFileError, VectorMismatchError
from taskvec.models import registry
from taskvec.patching.patch import patch
from taskvec.patching.sweep import sweep
from taskvec.prompts.template import get_template
from taskvec.storage import run_folder
from taskvec.tasks.registry import load_task
from taskvec.tasks.task import load_split_files


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _one_line(result, *words: str) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1, result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_model_load(monkeypatch):
    """``taskvec run`` must refuse before any weights are read: loading fails the test."""

    def forbidden(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the bad option was refused")

    monkeypatch.setattr("taskvec.pipelines.evaluate.load_model", forbidden)
    monkeypatch.setattr(registry, "_load", forbidden)


# --- task files ---------------------------------------------------------------------------------


def test_a_task_file_that_is_not_utf8_is_one_line_from_the_cli_and_the_library(tmp_path, no_model_load):
    path = write_task(tmp_path, "toy")
    path.write_bytes(path.read_bytes().replace(b"label 1", "l\u00e4bel 1".encode("latin-1")))
    _one_line(_cli("run", "-t", str(path), "--out", str(tmp_path / "run")), "toy.json", "not UTF-8")
    with pytest.raises(TaskFileError, match="toy.json: not UTF-8"):
        load_task(path)
    # the paper's layout (one file per split), as JSON, JSONL and CSV
    for suffix, text in ((".json", '[{"input": "x", "output": "y"}]'), (".csv", "input,output\nx,y\n")):
        val, test = tmp_path / f"t_val{suffix}", tmp_path / f"t_test{suffix}"
        val.write_text(text)
        test.write_bytes(text.replace("y", "\u00e9").encode("latin-1"))
        with pytest.raises(TaskFileError, match=f"t_test{suffix}: not UTF-8"):
            load_split_files(val, test, "t", "The label:")


# --- options checked before the model loads -------------------------------------------------------


@pytest.mark.parametrize("budget", ["inf", "nan", "-1"])
def test_a_memory_budget_that_is_not_a_finite_positive_number_is_refused_before_loading(
    budget, tmp_path, no_model_load
):
    result = _cli("run", "-t", "food_color", "--memory-budget-mb", budget, "--out", str(tmp_path / "r"))
    _one_line(result, "--memory-budget-mb")  # the flag, as the user typed it
    assert not (tmp_path / "r").exists()


def test_a_template_file_holding_a_list_is_one_line(tmp_path, no_model_load):
    template = tmp_path / "t.json"
    template.write_text(json.dumps([{"name": "t"}]))
    result = _cli("run", "-t", "food_color", "--template", str(template), "--out", str(tmp_path / "r"))
    _one_line(result, "t.json", "list", "object of template fields")


@pytest.mark.parametrize("dtype", ["int8", "bool", "complex64"])
def test_only_floating_dtypes_load_and_others_are_refused_before_loading(dtype, tmp_path, no_model_load):
    with pytest.raises(ModelSpecError, match=f"'{dtype}'"):
        registry.load_model("smollm2-135m", registry.LoadOptions(dtype=dtype))
    result = _cli("run", "-t", "food_color", "--dtype", dtype, "--out", str(tmp_path / "r"))
    _one_line(result, dtype, "floating")


def test_a_read_only_out_is_refused_before_loading(tmp_path, monkeypatch, no_model_load):
    """As root a chmod does not stop writes, so the read-only file system is simulated where every
    file is created (``mkstemp``); the real-permissions variant runs for other users."""

    def read_only(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = _cli("run", "-t", "food_color", "--seed", "1", "--out", str(tmp_path / "r"))
    _one_line(result, str(tmp_path / "r"), "read-only", "--out")


def test_a_full_disk_is_refused_before_loading(tmp_path, monkeypatch, no_model_load):
    """On a disk with no room left an empty probe file was still made, so the run found the disk
    full only once its model had loaded (minutes for a 7B). A disk with delayed allocation says so
    at fsync, as simulated here; the probe goes again."""
    probes: list[str] = []
    real_fsync = os.fsync

    def full(descriptor):
        probes.extend(path.name for path in tmp_path.iterdir() if path.name.startswith(".taskvec-probe"))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_folder.os, "fsync", full)
    result = _cli("run", "-t", "food_color", "--seed", "1", "--out", str(tmp_path / "r"))
    monkeypatch.setattr(run_folder.os, "fsync", real_fsync)
    _one_line(result, str(tmp_path / "r"), "no space left", "--out")
    assert probes and not list(tmp_path.iterdir())


def test_an_out_under_a_file_is_refused_before_loading(tmp_path, no_model_load):
    (tmp_path / "a-file").write_text("")
    result = _cli("run", "-t", "food_color", "--seed", "1", "--out", str(tmp_path / "a-file" / "r"))
    _one_line(result, "a-file", "not a folder")


def test_a_default_folder_that_cannot_be_made_is_refused_before_loading(tmp_path, monkeypatch, no_model_load):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("")  # no --out: the run's folder would go under runs/
    result = _cli("run", "-t", "food_color", "--seed", "1")
    _one_line(result, "runs", "not a folder")


def test_an_out_where_nothing_can_be_made_is_one_line_naming_it(tmp_path, monkeypatch, no_model_load):
    def no_such_place(*_args, **_kwargs):  # what /proc answers to a new file
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/proc/.taskvec-probe.x.tmp")

    monkeypatch.setattr(tempfile, "mkstemp", no_such_place)
    result = _cli("run", "-t", "food_color", "--seed", "1", "--out", str(tmp_path / "r"))
    line = _one_line(result, str(tmp_path / "r"), "cannot be written", "--out")
    assert "probe" not in line


def test_a_folder_holding_another_programs_config_is_refused_before_loading(tmp_path, no_model_load):
    model_folder = tmp_path / "a-model"
    model_folder.mkdir()
    (model_folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    result = _cli("run", "-t", "food_color", "--seed", "1", "--out", str(model_folder))
    _one_line(result, "a-model", "another program's config.json")
    assert sorted(p.name for p in model_folder.iterdir()) == ["config.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_folder_without_write_permission_is_refused_before_loading(tmp_path, no_model_load):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = _cli("run", "-t", "food_color", "--out", str(locked / "r"))
        _one_line(result, "permission denied")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_a_full_disk_anywhere_in_a_command_is_one_line(tmp_path, monkeypatch):
    """Writes the run folder does not make itself (a plot, a library's file) go through the CLI's
    own net: Errno 28 is the user's disk, not a bug."""

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "r" / "plots" / "x.png"))

    monkeypatch.setattr("taskvec.pipelines.evaluate.evaluate", full)
    result = _cli("run", "-t", "food_color", "--out", str(tmp_path / "r"))
    _one_line(result, "x.png", "no space left", "Errno 28", "again")


# --- models ---------------------------------------------------------------------------------------


def test_an_unreachable_hub_fails_at_once_in_one_line(tmp_path, monkeypatch):
    """Not a local folder, not cached, no network: one connection attempt, then a clear error
    (it used to retry for about half a minute)."""
    from huggingface_hub import constants

    attempts = []

    def no_network(address, *_args, **_kwargs):
        attempts.append(address)
        raise OSError(errno.ENETUNREACH, "Network is unreachable")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    for variable in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", lambda _self, address: no_network(address))
    started = time.monotonic()
    with pytest.raises(ModelSpecError, match="cannot be reached") as caught:
        registry.load_model("some-org/some-model")
    assert time.monotonic() - started < 15
    assert len(attempts) == 1
    assert "'some-org/some-model'" in str(caught.value) and "\n" not in str(caught.value)


# --- vectors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_vector_is_never_patched(value, smollm2):
    prompts = [get_template("spaced").query("kiwi")]
    vector = torch.zeros(smollm2.hidden_size)
    vector[3] = value
    with pytest.raises(VectorMismatchError, match="NaN or infinite"):
        patch(smollm2, prompts, vector, layer=10)
    vectors = torch.zeros(2, smollm2.hidden_size)
    vectors[1, 7] = value
    with pytest.raises(VectorMismatchError, match="NaN or infinite"):
        sweep(smollm2, prompts, vectors, [10, 12])
    # the control: the same vector, finite, patches
    vector[3] = 0.0
    assert len(patch(smollm2, prompts, vector, layer=10)) == 1


# --- run-folder files -------------------------------------------------------------------------------


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_run_folder_files_get_the_mode_the_umask_gives(mask, mode, tmp_path):
    previous = os.umask(mask)
    try:
        written = run_folder.write_json(tmp_path / "status.json", {"state": "running"})
        plain = tmp_path / "plain.txt"
        plain.write_text("a file written the ordinary way")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(written.stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)


def test_an_image_file_without_an_image_suffix_is_read_as_that_file(tmp_path):
    """The control of the 'neither a file nor an entity' row of the bad-input table: a picture
    named without a suffix, next to the task file, is that picture (it was read as code points)."""
    from PIL import Image

    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.pipelines.evaluate import validate_inputs
    from taskvec.prompts.inputs import image_file

    (tmp_path / "pics").mkdir()
    items = synthetic_items(8)
    for k, item in enumerate(items):  # one picture each: the same picture twice is refused
        Image.new("RGB", (32, 32), (10, 20 * k, 10)).save(tmp_path / "pics" / f"cat{k}", format="PNG")
        item["image"] = f"pics/cat{k}"
    path = write_task(tmp_path, "toy", val=items[:6], test=items[6:])
    config = ExperimentConfig.create(tasks=[str(path)], query="image", seeds=[1], layers=[20])
    (task,) = validate_inputs(config)
    assert image_file(task.test[0], "noto") == (tmp_path / "pics" / "cat6").resolve()


def test_a_plot_that_cannot_be_saved_names_its_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    """matplotlib's ENOSPC carries no filename: the error said "a file", and the half-written
    ``.val_curve.tmp.png`` stayed in the folder."""
    import matplotlib.pyplot as plt

    from taskvec.errors import StorageError
    from taskvec.storage.run_folder import write_figure

    figure = plt.figure()

    def full(target, **_options):
        Path(target).write_bytes(b"half a picture")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(figure, "savefig", full)
    path = tmp_path / "plots" / "val_curve.png"
    with pytest.raises(StorageError, match="val_curve.png: no space left"):
        write_figure(figure, path)
    plt.close(figure)
    assert list(path.parent.iterdir()) == []
