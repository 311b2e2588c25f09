"""The same command run again on a complete run folder reads it back before the model loads (a
7B model's minute of loading is not spent on results already on disk): the fingerprint the
model will have is read from its weight files, and anything short of this very run, complete,
still goes through loading."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers.reliability import TINY, loads_then, rewrite_results, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.models.registry import LoadOptions, fingerprint_before_loading, load_model
from taskvec.pipelines import evaluate as evaluate_module
from taskvec.pipelines.evaluate import evaluate
from taskvec.storage.run_folder import RunFolder


class Loaded(Exception):
    """Raised in place of loading a model: the run did not read its folder back."""


def _save(folder: Path, seed: int = 3) -> Path:
    llm = tiny_llm("llama", layers=3, seed=seed)
    llm.model.save_pretrained(folder)
    llm.tokenizer.save_pretrained(folder)
    return folder


def _forbid_loading(monkeypatch, pipeline=evaluate_module) -> None:
    """``pipeline`` (a module of ``taskvec.pipelines``) raises ``Loaded`` where it would load."""

    def load(*_args, **_kwargs):
        raise Loaded

    monkeypatch.setattr(pipeline, "load_model", load)


@pytest.fixture
def finished(tmp_path):
    """A complete run of a model saved as a folder, loaded by its path as a user loads theirs."""
    model = _save(tmp_path / "model")
    options = {**TINY, "model": str(model), "tasks": [str(write_tiny_task(tmp_path / "data"))], "layers": [1]}
    result = evaluate(ExperimentConfig.create(**options), tmp_path / "run", show_progress=False)
    return options, result


@pytest.mark.parametrize("options", [LoadOptions(), LoadOptions(dtype="bfloat16")], ids=["f32", "bf16"])
def test_the_fingerprint_before_loading_is_the_loaded_models(tmp_path, options):
    folder = _save(tmp_path / "model")
    before = fingerprint_before_loading(str(folder), options)
    assert before and before == load_model(str(folder), options).fingerprint
    _save(folder, seed=4)  # other weights in the same folder
    assert fingerprint_before_loading(str(folder), options) not in (None, before)


def test_a_named_models_fingerprint_before_loading_is_the_loaded_models():
    for name, options in [("smollm2-135m", LoadOptions(dtype="bfloat16")), ("embedded-vlm-smollm2", None)]:
        assert fingerprint_before_loading(name, options) == load_model(name, options).fingerprint, name


def test_a_folder_without_weights_is_left_to_loading_to_refuse(tmp_path):
    folder = _save(tmp_path / "model")
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    assert fingerprint_before_loading(str(folder)) is None


def test_a_complete_run_is_read_back_without_loading_the_model(finished, monkeypatch, tmp_path):
    options, first = finished
    _forbid_loading(monkeypatch)
    again = evaluate(ExperimentConfig.create(**options), tmp_path / "run", show_progress=False)
    assert again.predictions.equals(first.predictions)
    assert again.best_layer == first.best_layer and again.task_layers == first.task_layers
    assert again.val_scores.equals(first.val_scores)


def test_a_complete_run_in_its_default_folder_is_read_back_without_loading(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = _save(tmp_path / "model")
    options = {**TINY, "model": str(model), "tasks": [str(write_tiny_task(tmp_path / "data"))], "layers": [1]}
    first = evaluate(ExperimentConfig.create(**options), show_progress=False)
    _forbid_loading(monkeypatch)
    again = evaluate(ExperimentConfig.create(**options), show_progress=False)
    assert again.folder.root == first.folder.root and again.predictions.equals(first.predictions)


def test_anything_short_of_this_run_complete_loads_the_model(finished, monkeypatch, tmp_path):
    options, first = finished
    _forbid_loading(monkeypatch)
    config = ExperimentConfig.create(**options)
    # other numerics: the same weights in bfloat16 are another run (refused once loaded)
    with pytest.raises(Loaded):
        evaluate(config, tmp_path / "run", show_progress=False, load_options=LoadOptions(dtype="bfloat16"))
    # a seed more: the folder's units are reused, the new one computed
    with pytest.raises(Loaded):
        evaluate(config.model_copy(update={"seeds": [1, 2]}), tmp_path / "run", show_progress=False)
    # other weights under the same path
    _save(Path(options["model"]), seed=4)
    with pytest.raises(Loaded):
        evaluate(config, tmp_path / "run", show_progress=False)
    # a damaged unit is recomputed
    _save(Path(options["model"]))
    folder = RunFolder(tmp_path / "run")
    folder.unit_path("tiny_food", 1).write_text("{")
    with pytest.raises(Loaded):
        evaluate(config, tmp_path / "run", show_progress=False)


def test_a_folder_is_hashed_once_per_command_under_a_read_only_cache(tmp_path, monkeypatch):
    """A run fingerprints a folder before loading it and its loader does again: with no cache to
    keep the hash in (read-only), the weight files are still read once, not twice."""
    from taskvec.models import loading

    folder = _save(tmp_path / "model")
    hashed = []
    monkeypatch.setattr(loading, "file_fingerprint", lambda path: hashed.append(path) or "h")
    monkeypatch.setattr(loading, "_HASHED", {})
    read_only = LoadOptions(cache_dir=tmp_path / "cache")
    (tmp_path / "cache").mkdir(mode=0o500)
    first = fingerprint_before_loading(str(folder), read_only)
    assert load_model(str(folder), read_only).fingerprint == first and len(hashed) == 1
    _save(folder, seed=4)  # the file changed: hashed again
    fingerprint_before_loading(str(folder), read_only)
    assert len(hashed) == 2


ANALYSIS = dict(specs=["text-icl"], template="spaced", n_examples=2, prompts=3, lens_prompts=2)


def test_a_complete_analysis_is_read_back_without_loading_the_model(tmp_path, monkeypatch):
    from taskvec.pipelines import analyze as analyze_module
    from taskvec.pipelines.analyze import run_analysis
    from taskvec.report.analysis import write_analysis_report

    model = _save(tmp_path / "model")
    options = {**ANALYSIS, "model": str(model), "tasks": [str(write_tiny_task(tmp_path / "data"))]}
    summary = write_analysis_report(run_analysis(out=tmp_path / "analysis", **options))
    written = {p: p.read_bytes() for p in (tmp_path / "analysis").rglob("*") if p.is_file()}

    _forbid_loading(monkeypatch, analyze_module)
    again = run_analysis(out=tmp_path / "analysis", **options)
    assert again.summary_path == summary and again.analysis is None  # read back: nothing to write
    on_disk = pd.read_csv(tmp_path / "analysis" / "tables" / "decodings_table.csv", index_col=0)
    assert again.tables["decodings_table"].equals(on_disk)
    assert {p: p.read_bytes() for p in written} == written  # nothing rewritten
    with pytest.raises(Loaded):  # another analysis of the same model loads it
        run_analysis(out=tmp_path / "analysis", **{**options, "prompts": 2})


def test_taskvec_analyze_again_prints_the_folders_table_without_loading(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from taskvec.cli import app
    from taskvec.pipelines import analyze as analyze_module

    model = _save(tmp_path / "model")
    task = str(write_tiny_task(tmp_path / "data"))
    arguments = ["analyze", "--model", str(model), "-t", task, "--spec", "text-icl", "--prompts", "3"]
    arguments += ["--lens-prompts", "2", "--embedding", "pca", "--out", str(tmp_path / "analysis")]
    first = CliRunner().invoke(app, arguments)
    assert first.exit_code == 0, first.output

    _forbid_loading(monkeypatch, analyze_module)
    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 0, again.output
    said = " ".join(again.output.split())  # rich wraps lines at the terminal's width
    assert "holds this analysis, complete: read back, nothing computed" in said
    table = first.output[first.output.index("task-vector decodings") :]
    assert " ".join(table.split()) in said  # the same table and folder line


def test_the_checks_before_loading_read_a_config_once_until_it_changes(tmp_path, monkeypatch):
    import transformers

    from taskvec.models.registry import check_layers_before_loading, sees_images

    model = str(_save(tmp_path / "model"))
    reads = []
    read = transformers.AutoConfig.from_pretrained.__func__

    def counted(cls, source, *args, **kwargs):
        reads.append(source)
        return read(cls, source, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", classmethod(counted))
    assert not sees_images(model)
    check_layers_before_loading(model, [1])
    assert fingerprint_before_loading(model)
    assert reads == [model]  # online, each read was a request to the hub
    config = Path(model) / "config.json"
    config.write_text(config.read_text().replace('"num_hidden_layers": 3', '"num_hidden_layers": 2'))
    with pytest.raises(Exception, match="it has decoder layers 0..1"):
        check_layers_before_loading(model, [2])  # the changed config is read again
    assert reads == [model, model]


def test_an_analysis_of_a_run_is_read_back_only_at_the_layer_the_run_chooses_now(finished, monkeypatch):
    """An extended run that chose another layer had its analysis read back at the old layer: the
    layer taken from the run is in no identity, so the folder's recorded layer decides."""
    from taskvec.pipelines import analyze as analyze_module
    from taskvec.pipelines.analyze import run_analysis
    from taskvec.report.analysis import write_analysis_report

    options, result = finished
    run = result.folder.root
    write_analysis_report(run_analysis(run=run, **ANALYSIS))
    assert RunFolder(run / "analysis").status()["layer"] == 1

    _forbid_loading(monkeypatch, analyze_module)
    assert run_analysis(run=run, **ANALYSIS).layer == 1  # the same layer: read back
    rewrite_results(run, chosen_layer=0)  # extended, and its layer moved
    with pytest.raises(Loaded):  # recomputed, not read back at layer 1
        run_analysis(run=run, **ANALYSIS)
    monkeypatch.undo()
    again = run_analysis(run=run, **ANALYSIS)
    assert again.layer == 0 and RunFolder(run / "analysis").status()["layer"] == 0


def test_an_analysis_of_a_per_task_run_names_its_layer_as_the_mean_curves_best(finished):
    """A per-task run reads each task at its own layer: its ``best_layer`` is its mean curve's best,
    which the analysis called "chosen by the run"."""
    from taskvec.pipelines.analyze import run_analysis
    from taskvec.report.analysis import write_analysis_report

    _, result = finished
    run = result.folder.root
    task = next(iter(dict.fromkeys(result.predictions.task)))
    rewrite_results(run, layer_selection="per-task", chosen_layers={task: 1})
    analysis = run_analysis(run=run, **ANALYSIS)
    said = f"the best of the run's mean validation curve; the run read each task at its own layer: {task} 1"
    assert analysis.layer == 1 and analysis.layer_source == said
    summary = " ".join(write_analysis_report(analysis).read_text().split())
    assert said in summary and "chosen by the run" not in summary


def test_the_same_command_started_while_the_first_runs_is_refused_before_loading(tmp_path, monkeypatch):
    """The run's default folder is known before loading (the fingerprint comes from the weight
    files): a second command finds it held and is refused without loading the model."""
    from taskvec.errors import FolderBusyError

    monkeypatch.chdir(tmp_path)
    model = _save(tmp_path / "model")
    options = {**TINY, "model": str(model), "tasks": [str(write_tiny_task(tmp_path / "data"))], "layers": [1]}
    config = ExperimentConfig.create(**options)
    first = evaluate(config, show_progress=False)
    first.folder.unit_path("tiny_food", 1).unlink()  # the first command, half-way
    _forbid_loading(monkeypatch)
    busy = pytest.raises(FolderBusyError, match="in use by another taskvec command")
    with first.folder.lock(), busy:  # and still running
        evaluate(config, show_progress=False)
    with pytest.raises(Loaded):  # once it stopped, the same command loads and resumes it
        evaluate(config, show_progress=False)


def test_the_same_command_started_while_the_first_loads_is_refused_before_loading(tmp_path, monkeypatch):
    """In the run's default folder too (named by the fingerprint read before loading): the first
    command holds the folder's lock while its model loads, so the second is refused unloaded."""
    monkeypatch.chdir(tmp_path)
    model = _save(tmp_path / "model")
    options = {**TINY, "model": str(model), "tasks": [str(write_tiny_task(tmp_path / "data"))], "layers": [1]}
    config = ExperimentConfig.create(**options)
    calls, load = loads_then(lambda: evaluate(config, show_progress=False), lambda: load_model(str(model)))
    monkeypatch.setattr(evaluate_module, "load_model", load)
    first = evaluate(config, show_progress=False)
    assert calls == [str(model)] and first.folder.is_complete()
    assert first.folder.root.resolve().parent == (tmp_path / "runs").resolve()
