"""``--style`` counts only where a picture is drawn in it: a run that shows no picture (text
examples and queries) or only its tasks' own image files has the same identity and folder under
every style and records ``style: null``; its prediction rows say what was shown (the style, "own
files", or nothing); a folder an older taskvec wrote for such a run is refused with one line."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from helpers.reliability import TINY, snapshot, write_tiny_task
from helpers.tinyllm import tiny_llm
from PIL import Image

from taskvec.config import digest
from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.pipelines.evaluate import default_run_dir, evaluate, run_identity, unit_identity
from taskvec.pipelines.results import OWN_FILES, with_run_columns
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


def test_a_folder_an_older_taskvec_wrote_for_a_text_run_is_refused_with_one_line(tmp_path):
    """Before, the style counted in every run's identity: a folder written then for this very text
    run (identity of its options with ``style: noto``) is refused, named, and left untouched."""
    task = load_task_file(write_tiny_task(tmp_path / "data"))
    adapter = tiny_llm("llama", layers=3)
    config = _config(task, layers=[1])
    then = digest(config.config_hash(), task.fingerprint(), adapter.fingerprint, "")  # the old formula
    out = tmp_path / "run"
    out.mkdir()
    recorded = {"experiment": config.model_dump(mode="json"), "config_hash": then, "lineage": "older"}
    (out / "config.json").write_text(json.dumps(recorded))
    before = snapshot(out)
    with pytest.raises(ConfigError, match=r"written by an older taskvec.*--style 'noto'.*delete it"):
        evaluate(config, out, adapter=adapter, show_progress=False)
    assert snapshot(out) == before
    # a folder of another run stays "another configuration"
    (out / "config.json").write_text(json.dumps({**recorded, "config_hash": "0" * 12}))
    with pytest.raises(ConfigError, match="another configuration"):
        evaluate(config, out, adapter=adapter, show_progress=False)
