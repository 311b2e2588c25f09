"""Bad input fails early with an error that names the problem, and never leaves a result folder
that claims success; a killed run resumes to the same table; same seed, same bits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from taskvec.errors import (
    ConfigError,
    ImageError,
    LayerError,
    MemoryBudgetError,
    ModelSpecError,
    TaskFileError,
    TemplateError,
    VectorMismatchError,
)
from taskvec.evaluation.protocol import ExperimentConfig, run_unit
from taskvec.evaluation.run import check_labels_tokenize, evaluate
from taskvec.models.batching import plan_batches
from taskvec.models.registry import load_model
from taskvec.tasks.registry import load_task
from taskvec.vectors.task_vector import TaskVector

BASE = dict(tasks=["food_color"], seeds=[1], template="spaced", layers=[20])


def _task_file(folder: Path, val=None, test=None, **extra) -> Path:
    good = [{"id": f"i{k}", "input": f"thing {k}", "output": f"label {k}"} for k in range(8)]
    task = {
        "name": "toy",
        "instruction": "The label:",
        "val": val if val is not None else good[:6],
        "test": test if test is not None else good[6:],
        **extra,
    }
    path = folder / "toy.json"
    path.write_text(json.dumps(task))
    return path


def _image_task(folder: Path, make_image) -> Path:
    image_path = folder / "picture.png"
    make_image(image_path)
    items = [
        {"id": f"i{k}", "input": f"thing {k}", "output": f"label {k}", "image": "picture.png"}
        for k in range(8)
    ]
    return _task_file(folder, val=items[:6], test=items[6:])


def _missing_field(d):
    return {"tasks": [str(_task_file(d, val=[{"id": "a", "input": "x"}]))]}


def _empty_split(d):
    return {"tasks": [str(_task_file(d, test=[]))]}


def _duplicate_items(d):
    item = {"id": "same", "input": "x", "output": "y"}
    return {"tasks": [str(_task_file(d, val=[item, item]))]}


def _malformed_json(d):
    (d / "broken.json").write_text('{"name": "toy", ')
    return {"tasks": [str(d / "broken.json")]}


def _blank_label(d):
    return {"tasks": [str(_task_file(d, val=[{"id": "a", "input": "x", "output": " "}]))]}


def _blank_instruction(d):
    return {"tasks": [str(_task_file(d, instruction=""))]}


def _missing_image(d):
    def nothing(_path):
        pass

    return {"tasks": [str(_image_task(d, nothing))], "query": "image"}


def _unreadable_image(d):
    return {"tasks": [str(_image_task(d, lambda p: p.write_bytes(b"not a png at all")))], "query": "image"}


def _truncated_image(d):
    def truncated(path):
        Image.new("RGB", (64, 64), (200, 10, 10)).save(path)
        path.write_bytes(path.read_bytes()[:60])

    return {"tasks": [str(_image_task(d, truncated))], "query": "image"}


def _wrong_mode_image(d):
    return {"tasks": [str(_image_task(d, lambda p: Image.new("I;16", (8, 8)).save(p)))], "query": "image"}


def _huge_image(d):
    return {"tasks": [str(_image_task(d, lambda p: Image.new("1", (5000, 5000)).save(p)))], "query": "image"}


def _unknown_model_type(d):
    folder = d / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return {"model": str(folder)}


def _missing_weights(d):
    return {"model": str(d / "no-such-folder/")}


BAD_INPUTS = [
    # (case, options builder, error class, words the message must contain)
    ("unknown task", lambda d: {"tasks": ["no_such_task"]}, TaskFileError, "unknown task"),
    ("missing task file", lambda d: {"tasks": [str(d / "absent.json")]}, TaskFileError, "not found"),
    ("task item missing a field", _missing_field, TaskFileError, "val.0.output"),
    ("empty split", _empty_split, TaskFileError, "test split is empty"),
    ("duplicate items", _duplicate_items, TaskFileError, "appears twice"),
    ("malformed JSON", _malformed_json, TaskFileError, "not valid JSON"),
    ("blank label", _blank_label, TaskFileError, "blank"),
    ("blank instruction", _blank_instruction, TaskFileError, "instruction"),
    (
        "template without ':' delimiter",
        lambda d: {"template": {"name": "x", "output_prefix": "A "}},
        TemplateError,
        "delimiter",
    ),
    ("unknown template", lambda d: {"template": "fancy"}, TemplateError, "unknown template"),
    ("missing image", _missing_image, ImageError, "not found"),
    ("unreadable image", _unreadable_image, ImageError, "unreadable"),
    ("truncated image", _truncated_image, ImageError, "truncated"),
    ("wrong image mode", _wrong_mode_image, ImageError, "mode"),
    ("huge image", _huge_image, ImageError, "larger than"),
    ("unknown model name", lambda d: {"model": "gpt-17"}, ModelSpecError, "unknown model"),
    ("unknown model family", _unknown_model_type, ModelSpecError, "no adapter for model_type 'bert'"),
    ("missing weights", _missing_weights, ModelSpecError, "cannot read a model config"),
    ("layer out of range", lambda d: {"layers": [30]}, LayerError, "0..29"),
    ("negative layer", lambda d: {"layers": [-1]}, LayerError, ">= 0"),
    ("split too small for N", lambda d: {"n_examples": 10}, ConfigError, "too few"),
    ("image query on a text-only model", lambda d: {"query": "image"}, ConfigError, "text-only"),
    ("unknown spec", lambda d: {"spec": "telepathy"}, ConfigError, "spec"),
    ("duplicate seeds", lambda d: {"seeds": [1, 1]}, ConfigError, "seed is listed twice"),
    ("zero examples", lambda d: {"n_examples": 0}, ConfigError, "n_examples"),
]


@pytest.mark.parametrize(("case", "build", "error", "words"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_before_any_result(smollm2, tmp_path, case, build, error, words):
    out = tmp_path / "run"
    options = {**BASE, **build(tmp_path)}
    uses_own_model = "model" in options
    with pytest.raises(error, match=words.replace(".", r"\.").replace("(", r"\(")):
        config = ExperimentConfig.create(**options)
        evaluate(config, out, adapter=None if uses_own_model else smollm2, show_progress=False)
    status = out / "status.json"
    assert not (status.exists() and json.loads(status.read_text())["state"] == "complete")
    assert not out.exists(), f"{case}: a run folder was created"


def test_bad_input_table_has_at_least_twenty_cases():
    assert len(BAD_INPUTS) >= 20


def test_label_that_tokenizes_to_nothing_is_refused():
    class Silent:
        name = "silent"

        def text_token_ids(self, _text):
            return []

    with pytest.raises(TaskFileError, match="tokenizes to nothing"):
        check_labels_tokenize(Silent(), [load_task("food_color")])


def test_vector_from_a_model_of_another_width_or_other_weights_is_refused(smollm2, tmp_path):
    config = ExperimentConfig.create(**BASE)
    _unit, vector = run_unit(smollm2, load_task("food_color"), 1, config)
    wide = TaskVector(torch.zeros(30, 640), vector.meta.model_copy(update={"hidden_size": 640}))
    with pytest.raises(VectorMismatchError, match="640 wide"):
        wide.check_fits(smollm2)
    other = TaskVector(vector.vectors, vector.meta.model_copy(update={"model_fingerprint": "0000"}))
    with pytest.raises(VectorMismatchError, match="not from"):
        other.check_fits(smollm2, same_model=True)


def test_existing_foreign_folder_and_other_config_are_refused(smollm2, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a taskvec run folder"):
        evaluate(ExperimentConfig.create(**BASE), foreign, adapter=smollm2, show_progress=False)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_memory_budget_bounds_batches_and_refuses_an_item_that_cannot_fit():
    batches = list(plan_batches([10, 12, 9, 30, 11], max_tokens=40))
    assert all(max([10, 12, 9, 30, 11][i] for i in b) * len(b) <= 40 for b in batches)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]
    with pytest.raises(MemoryBudgetError, match="memory budget"):
        list(plan_batches([10, 50], max_tokens=40))
    with pytest.raises(MemoryBudgetError):
        list(plan_batches([10], max_tokens=40, rows_per_prompt=31))


def test_memory_budget_option_reaches_the_run(smollm2, tmp_path):
    config = ExperimentConfig.create(**{**BASE, "memory_budget_mb": 0.01})
    with pytest.raises(MemoryBudgetError):
        evaluate(config, tmp_path / "run", adapter=smollm2, show_progress=False)
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["state"] == "running"  # never claims success


def test_same_config_and_seed_give_bit_identical_vectors_and_predictions(smollm2):
    config = ExperimentConfig.create(**{**BASE, "layers": None})
    task = load_task("food_color")
    first_unit, first_vector = run_unit(smollm2, task, 1, config)
    second_unit, second_vector = run_unit(smollm2, task, 1, config)
    assert torch.equal(first_vector.vectors, second_vector.vectors)
    assert first_unit == second_unit
    _other_unit, other_vector = run_unit(smollm2, task, 2, config)
    assert not torch.equal(first_vector.vectors, other_vector.vectors)


def _run_command(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "taskvec.cli",
        "run",
        "--tasks",
        "food_color",
        "--tasks",
        "food_flavor",
        "--seed",
        "1",
        "--seed",
        "2",
        "--seed",
        "3",
        "--template",
        "spaced",
        "--layer",
        "19",
        "--layer",
        "21",
        "--out",
        str(out),
    ]


def test_kill_9_mid_run_then_resume_gives_the_uninterrupted_table(tmp_path):
    load_model("smollm2-135m")  # make sure the dequantized cache exists before timing anything
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(
        _run_command(interrupted), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    first_unit = interrupted / "units" / "food_color__seed1.json"
    deadline = time.monotonic() + 240
    while not first_unit.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first_unit.exists(), "the run never finished a unit"
    status = json.loads((interrupted / "status.json").read_text())
    assert status["state"] == "running"
    assert len(list((interrupted / "units").glob("*.json"))) < 6, "killed too late to test resume"
    assert not (interrupted / "report.md").exists()

    subprocess.run(_run_command(interrupted), env=env, check=True, capture_output=True)
    straight = tmp_path / "straight"
    subprocess.run(_run_command(straight), env=env, check=True, capture_output=True)
    assert json.loads((interrupted / "status.json").read_text())["state"] == "complete"
    for table in ("summary_paper.csv", "summary_exact.csv", "val_curve_strict.csv"):
        assert (interrupted / "tables" / table).read_text() == (straight / "tables" / table).read_text()
    assert (interrupted / "predictions.jsonl").read_text() == (straight / "predictions.jsonl").read_text()
