"""A run can be re-derived from its folder, the model and the task files: every vector records
which items built each of its prompts, ``verify_run`` builds those prompts again and extracts each
vector again (bitwise equal on this machine), and refuses a task file that changed."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.reliability import TINY, write_tiny_task
from helpers.tinyllm import tiny_llm
from typer.testing import CliRunner

from taskvec.cli import app
from taskvec.errors import ModelSpecError, TaskFileError, VectorFileError
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts
from taskvec.models.registry import load_model
from taskvec.pipelines.evaluate import evaluate
from taskvec.pipelines.verify import verify_run, verify_runs
from taskvec.tasks.task import load_task_file
from taskvec.vectors.task_vector import TaskVector


def _adapter(seed: int = 3):
    """A tiny LM wrapped as a model in memory, so that it has a fingerprint of its weights."""
    tiny = tiny_llm("llama", layers=3, seed=seed)
    return load_model(tiny.model, tiny.tokenizer)


def _run(root, spec="text-icl", seeds=(1, 2), name="tiny_food", **options):
    task = write_tiny_task(root / "data", name)
    config = ExperimentConfig.create(
        **{**TINY, "layers": [1], "tasks": [str(task)], "seeds": list(seeds), "spec": spec, **options}
    )
    result = evaluate(config, root / "run", adapter=_adapter(), show_progress=False)
    return task, result.folder


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    """An ensemble run: its vectors average an instruction and ICL prompts, so both kinds of
    source are recorded and re-derived."""
    return _run(tmp_path_factory.mktemp("verify"), spec="ensemble")


def test_each_vector_records_the_items_and_text_that_built_its_prompts(ensemble_run):
    task_file, folder = ensemble_run
    task = load_task_file(task_file)
    config = ExperimentConfig.create(**json.loads(folder.config_path.read_text())["experiment"])
    vector = TaskVector.load(folder.vector_path(task.name, "ensemble", 2))
    instruction, *icl = vector.meta.sources
    assert (instruction.kind, instruction.instruction) == ("instruction", task.instruction)
    assert len(icl) == len(task.val) == vector.meta.n_prompts - 1
    drawn = UnitPrompts(task, config, 2).val_demos
    for index, (source, demos) in enumerate(zip(icl, drawn, strict=True)):
        assert (source.query.split, source.query.index, source.query.id) == ("val", index, task.val[index].id)
        assert [d.id for d in source.demos] == [d.id for d in demos]
        for shown in source.demos:
            item = task.val[shown.index]
            assert (shown.id, shown.input, shown.label) == (item.id, item.input, item.label)
            assert shown.picture is None  # text demonstrations
    # the sidecar people read says the same
    sidecar = json.loads(folder.vector_path(task.name, "ensemble", 2).with_suffix(".json").read_text())
    assert sidecar["sources"][1]["demos"][0]["id"] == icl[0].demos[0].id


def test_a_run_rederived_from_its_folder_gives_the_same_vectors(ensemble_run):
    _, folder = ensemble_run
    verification = verify_run(folder.root, _adapter())
    assert [(c.task, c.seed) for c in verification.checks] == [("tiny_food", 1), ("tiny_food", 2)]
    for check in verification.checks:
        assert check.equal and check.close and check.max_abs_diff == 0.0
        assert check.prompts_rebuilt and check.sampling_agrees
    assert verification.ok and verification.same_numerics
    assert verification.summary().startswith("2 of 2 vectors re-derived bitwise equal")


def test_the_rederivation_follows_the_record_not_a_new_draw(tmp_path):
    """A vector whose record names other demonstrations re-derives to another vector: the
    prompts are built from the record (and the record is seen to differ from today's draw)."""
    _, folder = _run(tmp_path, seeds=(1,))
    path = folder.vector_path("tiny_food", "text-icl", 1)
    saved = TaskVector.load(path)
    first = saved.meta.sources[0]
    swapped = [first.demos[-1], *first.demos[:-1]]  # the same items, shown in another order
    sources = [first.model_copy(update={"demos": swapped}), *saved.meta.sources[1:]]
    TaskVector(saved.vectors, saved.meta.model_copy(update={"sources": sources})).save(path, overwrite=True)
    (check,) = verify_run(folder.root, _adapter()).checks
    assert not check.equal and not check.sampling_agrees and check.max_abs_diff > 0


def test_a_tampered_task_file_is_refused_before_any_vector_is_extracted(tmp_path, monkeypatch):
    task_file, folder = _run(tmp_path, seeds=(1,))
    monkeypatch.setattr("taskvec.pipelines.verify.task_vector_for", pytest.fail)
    data = json.loads(task_file.read_text())
    data["val"][0]["output"] = "purple"
    task_file.write_text(json.dumps(data))
    with pytest.raises(TaskFileError, match="fingerprint .* the task data changed"):
        verify_run(folder.root, _adapter())


def test_other_weights_and_vectors_without_sources_are_refused(tmp_path):
    _, folder = _run(tmp_path, seeds=(1,))
    with pytest.raises(ModelSpecError, match="re-derive with the run's model"):
        verify_run(folder.root, _adapter(seed=4))
    path = folder.vector_path("tiny_food", "text-icl", 1)
    saved = TaskVector.load(path)
    TaskVector(saved.vectors, saved.meta.model_copy(update={"sources": []})).save(path, overwrite=True)
    with pytest.raises(VectorFileError, match="records no prompt sources"):
        verify_run(folder.root, _adapter())


def test_taskvec_verify_prints_the_checks_and_refuses_a_tampered_task_in_one_line(tmp_path, monkeypatch):
    task_file, folder = _run(tmp_path, seeds=(1,))
    monkeypatch.setattr("taskvec.pipelines.verify.load_model", lambda *_args, **_kwargs: _adapter())
    env = {"COLUMNS": "200", "NO_COLOR": "1"}
    result = CliRunner().invoke(app, ["verify", str(folder.root)], env=env)
    assert result.exit_code == 0, result.output
    assert "1 of 1 vectors re-derived bitwise equal" in result.stdout  # beside its table, not on stderr
    task_file.write_text(task_file.read_text().replace('"green"', '"blue"', 1))
    result = CliRunner().invoke(app, ["verify", str(folder.root)], env=env)
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("error: task 'tiny_food'") and "fingerprint" in line


@pytest.mark.parametrize("numerics", ["bfloat16", "float64", "bfloat16+device_map=auto"])
def test_verify_told_a_device_or_a_model_loads_it_in_the_runs_dtype(tmp_path, monkeypatch, numerics):
    """``--device cpu`` (or ``--model``) without ``--dtype`` loaded a bfloat16 run's model in
    float32, and every vector then differed; a float64 run was always re-derived in float32."""
    _task, folder = _run(tmp_path, seeds=(1,))
    config = json.loads(folder.config_path.read_text())
    for part in ("model", "vector_model"):  # (the vectors' model: another one in LLM -> VLM runs)
        config[part]["numerics"] = numerics
    folder.config_path.write_text(json.dumps(config))
    seen = []

    def loading(_name, options):
        seen.append(options.dtype)
        raise SystemExit(0)  # the options are what this test is about

    monkeypatch.setattr("taskvec.models.registry.load_model", loading)
    monkeypatch.setattr("taskvec.pipelines.verify.load_model", loading)
    for extra in (["--device", "cpu"], ["--model", "some-model"]):
        CliRunner().invoke(app, ["verify", str(folder.root), *extra])
    assert seen == [numerics.split("+")[0]] * 2


def test_an_old_vector_without_sources_keeps_its_checksum(tmp_path):
    """Vectors saved before sources were recorded (no ``sources`` key) still load."""
    _, folder = _run(tmp_path, seeds=(1,))
    path = folder.vector_path("tiny_food", "text-icl", 1)
    saved = TaskVector.load(path)
    bare = TaskVector(saved.vectors, saved.meta.model_copy(update={"sources": []}))
    bare.save(path, overwrite=True)
    assert "sources" not in json.loads(path.with_suffix(".json").read_text())
    assert torch.equal(TaskVector.load(path).vectors, saved.vectors)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """Image ICL on a tiny LLaVA, over a task whose items bring their own (transparent) pictures."""
    from helpers.families import llava
    from PIL import Image

    root = tmp_path_factory.mktemp("image-run")
    folder = root / "data"
    task_file = write_tiny_task(folder)
    data = json.loads(task_file.read_text())
    (folder / "pics").mkdir()
    for k, item in enumerate(data["val"] + data["test"]):
        picture = Image.new("RGBA", (20 + k, 16), (40 * k % 255, 90, 200, 128))
        picture.save(folder / "pics" / f"{item['id']}.png")
        item.pop("entity")
        item["image"] = f"pics/{item['id']}.png"
    task_file.write_text(json.dumps(data))
    adapter = llava.build_llava()
    options = {**TINY, "layers": [1], "tasks": [str(task_file)], "spec": "image-icl", "model": adapter.name}
    result = evaluate(ExperimentConfig.create(**options), root / "run", adapter=adapter, show_progress=False)
    return folder, result.folder, adapter


def test_an_image_icl_run_records_its_pictures_and_rederives(image_run):
    """Each demonstration records the picture shown (its file relative to the task file, and its
    SHA-256), and the run re-derives bitwise; a changed picture is refused."""
    import hashlib

    from PIL import Image

    data, folder, adapter = image_run
    vector = TaskVector.load(folder.vector_path("tiny_food", "image-icl", 1))
    demo = vector.meta.sources[0].demos[0]
    assert (demo.picture.root, demo.picture.path) == ("task file", f"pics/{demo.id}.png")
    assert demo.picture.sha256 == hashlib.sha256((data / demo.picture.path).read_bytes()).hexdigest()
    assert vector.meta.sources[0].query.picture is not None  # the query is shown as a picture too
    (check,) = verify_run(folder.root, adapter).checks
    assert check.equal and check.prompts_rebuilt
    original = (data / demo.picture.path).read_bytes()
    Image.new("RGBA", (20, 16), "red").save(data / demo.picture.path)  # a picture changes
    try:
        with pytest.raises(TaskFileError, match="pictures .* changed"):
            verify_run(folder.root, adapter)
    finally:
        (data / demo.picture.path).write_bytes(original)


def test_the_run_records_the_pictures_it_showed_not_only_the_style(image_run):
    """config.json lists each picture shown (image ICL: the val split's) with its file and SHA-256;
    no style, since a task's own pictures have none."""
    import hashlib

    from taskvec.tasks.task import load_task_file

    data, folder, _ = image_run
    pictures = json.loads(folder.config_path.read_text())["pictures"]
    task = load_task_file(data / "tiny_food.json")
    assert pictures["style"] is None
    # nor do the options (the run's --style changed nothing) or the rows, which say "own files"
    assert json.loads(folder.config_path.read_text())["experiment"]["style"] is None
    rows = [json.loads(line) for line in folder.path("predictions.jsonl").read_text().splitlines()]
    assert {row["style"] for row in rows} == {"own files"}
    shown = pictures["tasks"]["tiny_food"]
    assert list(shown) == [item.id for item in task.val]
    for item_id, picture in shown.items():
        assert (picture["root"], picture["path"]) == ("task file", f"pics/{item_id}.png")
        assert picture["sha256"] == hashlib.sha256((data / picture["path"]).read_bytes()).hexdigest()


def test_suite_pictures_are_recorded_relative_to_the_suite_with_the_style():
    from taskvec.tasks.registry import load_task
    from taskvec.vectors.provenance import pictures_shown

    task = load_task("food_color")
    pictures = pictures_shown([task], "openmoji", ["val", "test"])
    assert pictures["style"] == "openmoji"
    first = pictures["tasks"]["food_color"][task.val[0].id]
    assert (first["root"], first["path"]) == ("suite", f"images/openmoji/{task.val[0].entity}.webp")
    assert len(pictures["tasks"]["food_color"]) == len(task.val) + len(task.test)


def test_a_folder_of_runs_is_verified_run_by_run_and_a_differing_vector_exits_1(tmp_path, monkeypatch):
    """``taskvec verify`` on a folder of runs (a reproduction's stages) checks each, loading the
    model once; a vector that does not re-derive within the tolerance makes it exit with 1."""
    _run(tmp_path / "a", seeds=(1,))
    _run(tmp_path / "b", seeds=(1,), spec="instruction")
    loaded = []
    monkeypatch.setattr("taskvec.pipelines.verify.load_model", lambda *a, **k: loaded.append(a) or _adapter())
    env = {"COLUMNS": "200", "NO_COLOR": "1"}
    result = CliRunner().invoke(app, ["verify", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    assert "a/run: 1 of 1 vectors re-derived bitwise equal" in result.output
    assert "b/run: 1 of 1 vectors re-derived bitwise equal" in result.output
    assert len(loaded) == 1
    path = tmp_path / "a" / "run" / "vectors" / "tiny_food__text-icl__seed1.safetensors"
    saved = TaskVector.load(path)
    TaskVector(saved.vectors + 1, saved.meta).save(path, overwrite=True)  # another vector, same record
    result = CliRunner().invoke(app, ["verify", str(tmp_path)], env=env)
    assert result.exit_code == 1
    assert "a/run: 0 of 1 vectors re-derived bitwise equal, 0 of 1 within" in result.output


def test_a_task_file_named_like_a_builtin_task_is_read_from_its_file(tmp_path):
    """A reproduction's quick tasks are files named like the built-in tasks (fewer items)."""
    _, folder = _run(tmp_path, seeds=(1,), name="food_color")
    (check,) = verify_run(folder.root, _adapter()).checks
    assert check.task == "food_color" and check.equal


def test_an_llm_to_vlm_run_is_rederived_with_the_llm_it_took_its_vectors_from(tmp_path, monkeypatch):
    """A transfer run (vectors of the base LLM patched into the VLM) is verified with the LLM,
    loaded by the name its config.json records for the vector model."""
    from helpers.families import llava

    vlm, llm = llava.build_llava(), tiny_llm("llama", hidden=32, layers=3)
    task = write_tiny_task(tmp_path / "data")
    options = {**TINY, "layers": [1], "tasks": [str(task)], "query": "image", "model": vlm.name}
    config = ExperimentConfig.create(**options)
    result = evaluate(config, tmp_path / "run", vlm, show_progress=False, vector_adapter=llm)
    assert set(result.predictions["style"]) == {"noto"}  # the suite's pictures, drawn in noto
    loaded = []
    monkeypatch.setattr("taskvec.pipelines.verify.load_model", lambda name, *a: loaded.append(name) or llm)
    (verification,) = verify_runs(tmp_path)
    assert loaded == [llm.name] and verification.model == llm.name
    assert [check.equal for check in verification.checks] == [True]


def test_one_bar_counts_the_vectors_of_every_run_with_an_eta(tmp_path, monkeypatch):
    """``taskvec verify`` on a folder of runs shows one bar over all their vectors, and the time
    left from the mean time per vector (here a minute each on a fake clock)."""
    from io import StringIO

    from rich.console import Console

    import taskvec.pipelines.verify as verify
    from taskvec.pipelines.progress import progress_bar

    _run(tmp_path / "a", seeds=(1, 2))
    _run(tmp_path / "b", seeds=(1,), spec="instruction")
    now, bars, rows = [1000.0], [], []
    monkeypatch.setattr(
        verify, "progress_bar", lambda show: bars.append(progress_bar(show, lambda: now[0])) or bars[-1]
    )
    real_check = verify._check

    def check(*args):
        out = StringIO()
        Console(file=out, width=200, color_system=None).print(bars[-1].make_tasks_table(bars[-1].tasks))
        rows.append(out.getvalue())
        now[0] += 60
        return real_check(*args)

    monkeypatch.setattr(verify, "_check", check)
    verifications = verify_runs(tmp_path, _adapter(), show_progress=True)
    assert [len(v.checks) for v in verifications] == [2, 1] and all(v.ok for v in verifications)
    assert len(bars) == 1 and "0/3 vectors" in rows[0]
    assert "a/run: tiny_food seed 1" in rows[0] and "a/run: tiny_food seed 2" in rows[1]
    assert "b/run: tiny_food seed 1" in rows[2]
    assert "2/3 vectors" in rows[2] and "~0:01:00 left" in rows[2]  # two vectors in two minutes


def test_a_damaged_vector_file_is_listed_and_the_others_are_still_verified(tmp_path, monkeypatch):
    """A corrupt saved vector stopped the whole verification with exit 2 at the first one; it is
    what a verification should find: listed as damaged (exit 1), the other seeds still checked."""
    _, folder = _run(tmp_path, seeds=(1, 2))
    path = folder.vector_path("tiny_food", "text-icl", 1)
    data = bytearray(path.read_bytes())
    data[-4] ^= 0xFF  # a flipped byte in the tensor data
    path.write_bytes(bytes(data))
    (verification,) = verify_runs(folder.root, _adapter())
    damaged, intact = verification.checks
    assert "checksum mismatch" in damaged.damaged and not damaged.close
    assert intact.equal and not intact.damaged
    assert not verification.ok and verification.summary().endswith("; 1 saved vector file(s) damaged")
    monkeypatch.setattr("taskvec.pipelines.verify.load_model", lambda *_args, **_kwargs: _adapter())
    result = CliRunner().invoke(app, ["verify", str(folder.root)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 1, result.output
    assert "saved file DAMAGED" in result.output and "damaged: " in result.output


def test_a_vector_copied_into_another_seeds_place_is_found(tmp_path, monkeypatch):
    """Seed 2's vector copied over seed 1's re-derived bitwise equal from its own record, so the
    verification passed (exit 0); its metadata names seed 2, so it does not belong there."""
    import shutil

    _, folder = _run(tmp_path, seeds=(1, 2))
    for suffix in (".safetensors", ".json"):
        shutil.copy(
            folder.vector_path("tiny_food", "text-icl", 2).with_suffix(suffix),
            folder.vector_path("tiny_food", "text-icl", 1).with_suffix(suffix),
        )
    (verification,) = verify_runs(folder.root, _adapter())
    misplaced, intact = verification.checks
    assert "another vector than its place's (seed 2, not 1; the vector's record first" in misplaced.damaged
    assert "copied from another slot or run, or config.json was edited" in misplaced.damaged
    assert not misplaced.close and intact.equal and not verification.ok
    monkeypatch.setattr("taskvec.pipelines.verify.load_model", lambda *_args, **_kwargs: _adapter())
    result = CliRunner().invoke(app, ["verify", str(folder.root)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 1, result.output
    assert "seed 2, not 1" in result.output


def test_a_run_records_its_thread_count_and_verify_names_another_one(tmp_path):
    """Another torch thread count sums in another order: a vector that is then close but not
    bitwise equal is explained by the counts, which the run records."""
    _, folder = _run(tmp_path, seeds=(1,))
    recorded = json.loads(folder.config_path.read_text())
    assert recorded["versions"]["torch_threads"] == torch.get_num_threads()
    path = folder.vector_path("tiny_food", "text-icl", 1)
    saved = TaskVector.load(path)
    TaskVector(saved.vectors * (1 + 1e-6), saved.meta).save(path, overwrite=True)  # last bits only
    same = verify_run(folder.root, _adapter())
    assert same.checks[0].close and not same.checks[0].equal
    assert "thread" not in same.summary()  # the same count: nothing to explain it by
    recorded["versions"]["torch_threads"] = torch.get_num_threads() + 3
    folder.config_path.write_text(json.dumps(recorded))
    other = verify_run(folder.root, _adapter())
    assert f"the run used {torch.get_num_threads() + 3} torch thread(s), this check " in other.summary()
    assert f"OMP_NUM_THREADS={torch.get_num_threads() + 3}" in other.summary()
