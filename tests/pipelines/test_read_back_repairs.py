"""A complete run folder read back again trusts its units, not the files derived from them: the
layers are chosen from the units, the predictions rebuilt from them (only the xPatch answers,
which no unit holds, come from predictions.jsonl), and a derived file that is missing, cut or
edited is rewritten, so a read-back never shows numbers that disagree with results.json."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers.reliability import TINY, snapshot, write_tiny_task
from helpers.tinyllm import tiny_llm

from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines import evaluate as evaluate_module
from taskvec.pipelines.evaluate import evaluate

DERIVED = ("predictions.jsonl", "results.json", "tables/results_long.csv")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete run over all three layers of a tiny model: its config, result and files."""
    root = tmp_path_factory.mktemp("read_back")
    adapter = tiny_llm("llama", layers=3)
    task = write_tiny_task(root / "data")
    config = ExperimentConfig.create(**{**TINY, "layers": None, "tasks": [str(task)]})
    result = evaluate(config, root / "run", adapter=adapter, show_progress=False)
    return config, adapter, result, snapshot(root / "run")


def _copy(finished, tmp_path):
    _, _, result, _ = finished
    shutil.copytree(result.folder.root, tmp_path / "run")
    return tmp_path / "run"


def _read_back(finished, folder, monkeypatch, answers_allowed: bool = False, answers_required: bool = False):
    """``evaluate`` on ``folder`` again, failing if a unit (or, unless allowed, an answer) is
    computed, or (``answers_required``) if the xPatch answers are not computed again."""
    config, adapter, _, _ = finished

    def fail(*_args, **_kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(evaluate_module, "run_unit", fail)
    computed = []
    if answers_required:
        original = evaluate_module.patched_answers

        def counted(*args, **kwargs):
            computed.append(True)
            return original(*args, **kwargs)

        monkeypatch.setattr(evaluate_module, "patched_answers", counted)
    elif not answers_allowed:
        monkeypatch.setattr(evaluate_module, "patched_answers", fail)
    result = evaluate(config, folder, adapter=adapter, show_progress=False)
    assert computed or not answers_required, "the xPatch answers were read back, not computed again"
    return result


def _derived(folder) -> dict:
    return {name: (folder / name).read_bytes() for name in DERIVED}


def test_dropped_rows_are_rebuilt_from_the_units(finished, tmp_path, monkeypatch):
    _, _, first, files = finished
    folder = _copy(finished, tmp_path)
    lines = (folder / "predictions.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["method"] != "no_context"]
    (folder / "predictions.jsonl").write_text("".join(kept))
    again = _read_back(finished, folder, monkeypatch)
    assert again.predictions.equals(first.predictions)
    assert _derived(folder) == {name: files[name] for name in DERIVED}


@pytest.mark.parametrize("damage", ["truncated", "cut mid-line"])
def test_missing_xpatch_answers_are_computed_again_from_the_units(finished, tmp_path, monkeypatch, damage):
    _, _, first, files = finished
    folder = _copy(finished, tmp_path)
    text = (folder / "predictions.jsonl").read_text()
    cut = "".join(text.splitlines(keepends=True)[:-3]) if damage == "truncated" else text[: len(text) // 2]
    (folder / "predictions.jsonl").write_text(cut)
    again = _read_back(finished, folder, monkeypatch, answers_allowed=True)
    assert again.predictions.equals(first.predictions)
    assert _derived(folder) == {name: files[name] for name in DERIVED}


def test_the_layers_come_from_the_units_not_status_json(finished, tmp_path, monkeypatch):
    _, _, first, _ = finished
    folder = _copy(finished, tmp_path)
    status = json.loads((folder / "status.json").read_text())
    other = (first.best_layer + 1) % 3
    status.update(best_layer=other, task_layers={task: other for task in status["task_layers"]})
    (folder / "status.json").write_text(json.dumps(status))
    again = _read_back(finished, folder, monkeypatch)
    assert again.best_layer == first.best_layer and again.task_layers == first.task_layers


def test_an_edited_table_is_rewritten(finished, tmp_path, monkeypatch):
    _, _, first, files = finished
    folder = _copy(finished, tmp_path)
    tidy = folder / "tables" / "results_long.csv"
    tidy.write_text(tidy.read_text().replace(",0.", ",0.9", 1))
    again = _read_back(finished, folder, monkeypatch)
    assert again.predictions.equals(first.predictions)
    assert _derived(folder) == {name: files[name] for name in DERIVED}


def test_an_edited_results_file_is_rewritten_and_vouches_for_nothing(finished, tmp_path, monkeypatch):
    """results.json records its own checksum: edited (a mean set by hand), it no longer vouches
    for the xPatch answers beside it, which are computed again."""
    _, _, first, files = finished
    folder = _copy(finished, tmp_path)
    results = json.loads((folder / "results.json").read_text())
    results["results"] = {"edited": 1.0}
    (folder / "results.json").write_text(json.dumps(results))
    again = _read_back(finished, folder, monkeypatch, answers_required=True)
    assert again.predictions.equals(first.predictions)
    assert _derived(folder) == {name: files[name] for name in DERIVED}


def _with_right_xpatch_answers(folder) -> None:
    """Every xPatch answer of predictions.jsonl replaced by its label, as a hand edit would."""
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    for row in rows:
        if row["method"] == "xpatch":
            row["prediction"] = row["answer"] = " " + row["label"]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.mark.parametrize("results_file", ["kept", "missing", "of an older taskvec"])
def test_edited_xpatch_answers_are_computed_again_not_taken_as_results(
    finished, tmp_path, monkeypatch, results_file
):
    """The xPatch answers are the one thing a read-back takes from predictions.jsonl. Edited to the
    labels, they were scored (xPatch 1.00), re-checksummed, and then vouched for by load_run,
    ``taskvec runs`` and verify. results.json records their checksum; without results.json nothing
    vouches for them, and an older taskvec's results.json vouches for the whole file."""
    _, _, first, files = finished
    folder = _copy(finished, tmp_path)
    _with_right_xpatch_answers(folder)
    if results_file == "missing":
        (folder / "results.json").unlink()
    elif results_file == "of an older taskvec":  # no checksum of its own, nor of the answers
        results = json.loads((folder / "results.json").read_text())
        del results["xpatch_answers"], results["checksum"]
        (folder / "results.json").write_text(json.dumps(results))
    again = _read_back(finished, folder, monkeypatch, answers_required=True)
    assert again.predictions.equals(first.predictions)
    assert _derived(folder) == {name: files[name] for name in DERIVED}


def test_xpatch_answers_results_json_vouches_for_are_read_back_without_computing(
    finished, tmp_path, monkeypatch
):
    """Where only other rows were lost, the xPatch answers still check out, row by row."""
    _, _, first, _ = finished
    folder = _copy(finished, tmp_path)
    lines = (folder / "predictions.jsonl").read_text().splitlines(keepends=True)
    (folder / "predictions.jsonl").write_text(
        "".join(reversed(lines[1:]))
    )  # one row lost, the rest reordered
    assert json.loads(lines[0])["method"] != "xpatch"
    again = _read_back(finished, folder, monkeypatch)
    assert again.predictions.equals(first.predictions)


def test_an_edited_unit_is_computed_again_not_taken_as_results(finished, tmp_path, monkeypatch):
    """A unit is what a read-back rebuilds every other answer from; one edited by hand (its xBase
    answers set to the labels) was read back as xBase 1.00. It records its own checksum."""
    config, adapter, first, files = finished
    folder = _copy(finished, tmp_path)
    (path,) = (folder / "units").glob("*.json")
    unit = json.loads(path.read_text())
    for item in unit["test"]:
        item["xbase"], item["xbase_answer"] = item["label"], " " + item["label"]
    path.write_text(json.dumps(unit))
    again = evaluate(config, folder, adapter=adapter, show_progress=False)
    assert again.predictions.equals(first.predictions)
    assert _derived(folder) == {name: files[name] for name in DERIVED}
    assert path.read_bytes() == files[str(path.relative_to(folder))]  # computed again, as it was
