"""``--style`` counts only where a picture is drawn in it: a run that shows no picture (text
examples and queries) or only its tasks' own image files has the same identity and folder under
every style and records ``style: null``; its prediction rows say what was shown (the style, "own
files", or nothing); a folder an older taskvec wrote for such a run (its identity still counted
the style) resumes and reads back under the identity it was written with."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pandas as pd
import pytest
from helpers.families.llava import build_llava
from helpers.reliability import TINY, counted_units, snapshot, write_tiny_task
from helpers.tinyllm import tiny_llm
from PIL import Image

from taskvec.config import digest
from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.experiments.conditions import Condition
from taskvec.pipelines import evaluate as evaluate_module
from taskvec.pipelines.evaluate import default_run_dir, evaluate, run_identity, unit_identity
from taskvec.pipelines.reproduce import run_conditions
from taskvec.pipelines.results import OWN_FILES, load_run, with_run_columns
from taskvec.tasks.task import load_task_file


def _own_pictures_task(folder, name="tiny_own"):
    """tiny_food with a PNG of its own for every item."""
    path = write_tiny_task(folder, name=name)
    data = json.loads(path.read_text())
    for k, item in enumerate(data["val"] + data["test"]):
        Image.new("RGB", (12 + k, 10), (30 * k % 255, 90, 200)).save(folder / f"{item['id']}.png")
        item.pop("entity")
        item["image"] = f"{item['id']}.png"
    path.write_text(json.dumps(data))
    return load_task_file(path)


def _config(task, **options) -> ExperimentConfig:
    return ExperimentConfig.create(**{**TINY, "tasks": [task.source], **options})


def _ids(config: ExperimentConfig, tasks) -> tuple:
    return (
        run_identity(config, tasks, "weights"),
        default_run_dir(config, tasks, model_fingerprint="weights"),
        [unit_identity(config, task, "weights") for task in tasks],
    )


@pytest.mark.parametrize(
    "spec, query, own",
    [("text-icl", "text", False), ("instruction", "text", False), ("image-icl", "text", True)],
)
def test_a_run_that_draws_no_picture_has_one_identity_under_every_style(tmp_path, spec, query, own):
    task = _own_pictures_task(tmp_path) if own else load_task_file(write_tiny_task(tmp_path))
    noto, openmoji = (_config(task, spec=spec, query=query, style=s) for s in ("noto", "openmoji"))
    assert _ids(noto, [task]) == _ids(openmoji, [task])
    assert noto.as_run([task]).style is None


def test_a_run_that_draws_suite_pictures_keeps_the_style_in_its_identity(tmp_path):
    task = load_task_file(write_tiny_task(tmp_path))  # its items name image-suite entities
    for spec, query in (("text-icl", "image"), ("image-icl", "text")):
        noto, openmoji = (_config(task, spec=spec, query=query, style=s) for s in ("noto", "openmoji"))
        assert _ids(noto, [task])[0] != _ids(openmoji, [task])[0]
        assert _ids(noto, [task])[2] != _ids(openmoji, [task])[2]
        assert noto.as_run([task]).style == "noto"
    # beside a suite task, a task of its own pictures keeps its units under every style
    own = _own_pictures_task(tmp_path / "own")
    noto, openmoji = (
        _config(task, query="image", style=s, tasks=[task.source, own.source]) for s in ("noto", "openmoji")
    )
    assert unit_identity(noto, own, "w") == unit_identity(openmoji, own, "w")
    assert unit_identity(noto, task, "w") != unit_identity(openmoji, task, "w")


def test_prediction_rows_say_which_pictures_were_shown(tmp_path):
    suite = load_task_file(write_tiny_task(tmp_path))
    own = _own_pictures_task(tmp_path / "own")
    rows = pd.DataFrame({"task": [suite.name, own.name], "method": ["xbase", "xpatch"]})
    tasks = [suite, own]
    shown = _config(suite, query="image", style="openmoji", tasks=[suite.source, own.source])
    styles = with_run_columns(rows, shown, 3, "m", tasks)["style"].tolist()
    assert styles == ["openmoji", OWN_FILES]
    text = _config(suite, style="openmoji", tasks=[suite.source, own.source])
    assert with_run_columns(rows, text, 3, "m", tasks)["style"].tolist() == [None, None]


@contextmanager
def _older_taskvec(monkeypatch):
    """Runs as the taskvec before ``as_run`` wrote them: the style counted in every identity and
    recorded in config.json whether or not a picture is drawn in it."""
    with monkeypatch.context() as patched:
        patched.setattr(ExperimentConfig, "as_run", lambda self, tasks: self)
        yield


def _outputs(folder):
    """What a finished run hands its reader: tables, predictions and results.json."""
    files = snapshot(folder)
    return {name: data for name, data in files.items() if name.startswith("tables/")} | {
        name: files[name] for name in ("predictions.jsonl", "results.json")
    }


def test_an_interrupted_folder_an_older_taskvec_wrote_resumes_under_its_own_identity(tmp_path, monkeypatch):
    """Before, the style counted in every run's identity: a text run's folder written then is
    resumed under the identity it was written with, its finished unit reused, and ends with the
    tables of a fresh run; its config.json keeps what it recorded."""
    task = load_task_file(write_tiny_task(tmp_path / "data"))
    adapter = tiny_llm("llama", layers=3)
    config = _config(task, layers=[1], seeds=[1, 2])
    old = tmp_path / "old"
    with _older_taskvec(monkeypatch), monkeypatch.context() as killed:
        counted_units(killed, stop_after=1)
        with pytest.raises(KeyboardInterrupt):
            evaluate(config, old, adapter=adapter, show_progress=False)
    # the old formula, of the options as the run records them (the given model names it)
    named = config.model_copy(update={"model": adapter.name})
    then = digest(named.config_hash(), task.fingerprint(), adapter.fingerprint, "")
    recorded = json.loads((old / "config.json").read_text())
    assert (recorded["config_hash"], recorded["experiment"]["style"]) == (then, "noto")
    finished = old / "units" / f"{task.name}__seed1.json"
    kept = (finished.read_bytes(), finished.stat().st_mtime_ns)
    assert not (old / "units" / f"{task.name}__seed2.json").exists()

    computed = counted_units(monkeypatch)
    result = evaluate(config, old, adapter=adapter, show_progress=False)
    assert computed == [(task.name, 2)]  # seed 1 was reused, not recomputed
    assert (finished.read_bytes(), finished.stat().st_mtime_ns) == kept
    assert json.loads((old / "config.json").read_text()) == recorded
    stamps = {json.loads(p.read_bytes())["run_identity"] for p in (old / "units").glob("*.json")}
    assert len(stamps) == 1  # the new unit stamped as the reused one
    fresh = evaluate(config, tmp_path / "fresh", adapter=adapter, show_progress=False)
    assert _outputs(old) == _outputs(tmp_path / "fresh")
    assert result.best_layer == fresh.best_layer


def test_a_complete_folder_an_older_taskvec_wrote_reads_back_and_is_found_complete(tmp_path, monkeypatch):
    task = load_task_file(write_tiny_task(tmp_path / "data"))
    adapter = tiny_llm("llama", layers=3)
    config = _config(task, spec="instruction", layers=[1])
    old = tmp_path / "old"
    with _older_taskvec(monkeypatch):
        written = evaluate(config, old, adapter=adapter, show_progress=False)
    frame = load_run(old)
    before = snapshot(old)
    computed = counted_units(monkeypatch)
    again = evaluate(config, old, adapter=adapter, show_progress=False)  # the same command again
    assert computed == []
    assert snapshot(old) == before
    assert (again.best_layer, again.task_layers) == (written.best_layer, written.task_layers)
    pd.testing.assert_frame_equal(load_run(old), frame)
    # another seed extends it under the same (older) identity: only the new seed's unit is computed
    evaluate(config.model_copy(update={"seeds": [1, 2]}), old, adapter=adapter, show_progress=False)
    assert computed == [(task.name, 2)]
    assert json.loads((old / "config.json").read_text())["experiment"]["style"] == "noto"


def test_the_same_command_without_out_finds_the_folder_an_older_taskvec_named(tmp_path, monkeypatch):
    """Without ``--out`` the folder is named by the run identity: the older one's is still found."""
    task = load_task_file(write_tiny_task(tmp_path / "data"))
    adapter = tiny_llm("llama", layers=3)
    config = _config(task, layers=[1])
    monkeypatch.chdir(tmp_path)
    with _older_taskvec(monkeypatch):
        written = evaluate(config, adapter=adapter, show_progress=False)
    assert written.folder.root != default_run_dir(config, [task], model_fingerprint=adapter.fingerprint)
    computed = counted_units(monkeypatch)
    again = evaluate(config, adapter=adapter, show_progress=False)
    assert (again.folder.root, computed) == (written.folder.root, [])
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [written.folder.root.name]


def test_a_reproductions_text_condition_written_by_an_older_taskvec_resumes(tmp_path, monkeypatch):
    """``taskvec reproduce`` runs each condition through ``run_conditions`` into
    ``conditions/<name>``: an older reproduction's text condition, killed after its first unit,
    is completed in place (a whole reproduction is the slow ``tests/experiments/test_reproduce.py``)."""
    task = str(write_tiny_task(tmp_path / "task", test=2))
    condition = Condition("text-icl", "text")
    root = tmp_path / "conditions"
    vlm = build_llava()
    options = dict(tasks=[task], seeds=[1, 2], layers=[1], answer_tokens=2)
    with _older_taskvec(monkeypatch), monkeypatch.context() as killed:
        counted_units(killed, stop_after=1)
        with pytest.raises(KeyboardInterrupt):
            run_conditions(vlm, [condition], root, False, **options)
    computed = counted_units(monkeypatch)
    results = run_conditions(vlm, [condition], root, False, **options)
    assert [seed for _, seed in computed] == [2]
    assert results[condition].folder.is_complete()
    assert json.loads((root / condition.name / "config.json").read_text())["experiment"]["style"] == "noto"


def test_a_folder_of_another_run_with_a_recorded_style_stays_another_configuration(tmp_path):
    task = load_task_file(write_tiny_task(tmp_path / "data"))
    adapter = tiny_llm("llama", layers=3)
    config = _config(task, layers=[1])
    out = tmp_path / "run"
    out.mkdir()
    recorded = {"experiment": config.model_dump(mode="json"), "config_hash": "0" * 12, "lineage": "older"}
    (out / "config.json").write_text(json.dumps(recorded))
    before = snapshot(out)
    with pytest.raises(
        ConfigError, match=r"holds another run \(.*experiment.style: \"noto\" in the folder, none now"
    ):
        evaluate(config, out, adapter=adapter, show_progress=False)
    assert snapshot(out) == before


@pytest.mark.parametrize(("query", "noted"), [("text", True), ("image", False)])
def test_a_style_given_to_a_run_that_draws_none_is_noted(tmp_path, monkeypatch, query, noted):
    """``taskvec run --style openmoji`` on text queries ran silently as if the style were used
    (the run records none): a researcher could think the held-out style was measured."""
    from typer.testing import CliRunner

    from taskvec.cli import app
    from taskvec.errors import TaskvecError

    def stop(*_args, **_kwargs):
        raise TaskvecError("stopped before any work")

    monkeypatch.setattr(evaluate_module, "evaluate", stop)
    args = [
        "run",
        "--model",
        "embedded-vlm",
        "--tasks",
        "food_color",
        "--query",
        query,
        "--style",
        "openmoji",
    ]
    output = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")]).output
    assert "stopped before any work" in output
    assert ("note: --style openmoji changes nothing here" in output) == noted, output
