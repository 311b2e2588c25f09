"""A quick reproduction's runs name its cut task files by their place in its folder: moved, it is
refused in one line that says so, before any model loads (it was "holds another run")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskvec.errors import ConfigError
from taskvec.pipelines import reproduce as reproduce_module
from taskvec.pipelines.reproduce import ReproduceConfig, reproduce, reproduction_root


def _made_in(place, root):
    """``root`` as a quick reproduction made in ``place`` leaves it: a condition's run config."""
    run = root / "conditions" / "text-icl__text"
    run.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"reproduce": {}, "config_hash": "0"}))
    tasks = [str(place / "quick-tasks" / "country_capital.json")]
    (run / "config.json").write_text(json.dumps({"experiment": {"tasks": tasks}}))


def _no_loading(monkeypatch):
    def load(*_args, **_kwargs):
        raise AssertionError("the model loaded")

    monkeypatch.setattr(reproduce_module, "load_model", load)


def test_a_moved_quick_reproduction_is_refused_before_loading(tmp_path, monkeypatch):
    _no_loading(monkeypatch)
    root = tmp_path / "moved"
    _made_in(tmp_path / "first", root)
    config = ReproduceConfig.create(model="embedded-vlm-smollm2", quick=True, tasks=["country_capital"])
    said = rf"made in {tmp_path / 'first'} and moved or copied since.*move it back"
    with pytest.raises(ConfigError, match=said):
        reproduce(config, root, show_progress=False)


def test_one_in_its_own_place_is_not_refused_for_it(tmp_path, monkeypatch):
    _no_loading(monkeypatch)
    root = tmp_path / "here"
    _made_in(root, root)
    config = ReproduceConfig.create(model="embedded-vlm-smollm2", quick=True, tasks=["country_capital"])
    with pytest.raises(AssertionError, match="the model loaded"):  # on to its work
        reproduce(config, root, show_progress=False)


@pytest.mark.parametrize("model", ["../../models/vlm", "org/name", "/abs/models/vlm"])
def test_a_reproductions_default_folder_is_one_folder_inside_runs_whatever_the_models_name(model):
    """``reproduce --model ../../models/vlm`` wrote its folder outside runs/, and a hub id nested
    one inside it: ``taskvec runs`` listed neither."""
    config = ReproduceConfig.model_construct(model=model, quick=True)
    root = reproduction_root(config)
    assert root.parent == Path("runs") and root.name.startswith("reproduce-") and root.name.endswith("-quick")
    assert reproduction_root(config, "elsewhere") == Path("elsewhere")


def test_a_reproduction_an_earlier_taskvec_nested_in_runs_is_still_found(tmp_path, monkeypatch):
    """Before, a hub id's default folder was ``runs/reproduce-org/name``: found there, not redone
    in a new folder (hours of GPU work for a real VLM)."""
    monkeypatch.chdir(tmp_path)
    config = ReproduceConfig.model_construct(model="org/name", quick=False)
    assert reproduction_root(config) == Path("runs") / "reproduce-org_name"
    earlier = tmp_path / "runs" / "reproduce-org" / "name"
    earlier.mkdir(parents=True)
    (earlier / "config.json").write_text("{}")
    assert reproduction_root(config) == Path("runs") / "reproduce-org" / "name"
