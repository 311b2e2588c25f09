"""``taskvec align`` as a researcher retraining the embedded VLM meets it: LoRA weights it writes
load back (they were refused, the fingerprint read after the adapters were merged), a weights
folder that cannot be written is refused before training, a damaged cache or sidecar is one line
or recomputed, and options that would fail mid-training are refused at once."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest
import torch
from pydantic import ValidationError
from typer.testing import CliRunner

from taskvec.align.lora import LoraStageConfig
from taskvec.align.projector import ProjectorConfig
from taskvec.align.recogniser import RecogniserConfig
from taskvec.cli import app
from taskvec.errors import ModelSpecError
from taskvec.models.embedded.load import load_embedded_vlm
from taskvec.models.embedded.lora import add_lora, lora_layers
from taskvec.models.embedded.weights import WEIGHTS_DIR, sidecar_of
from taskvec.pipelines import align as align_module


def _shipped(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        for suffix in (".safetensors", ".json"):
            shutil.copy(WEIGHTS_DIR / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


def test_lora_weights_align_writes_load_back(tmp_path, monkeypatch):
    """The sidecar recorded the tuned model's fingerprint, so loading refused every file it wrote:
    "lora-smollm2 was trained on other smollm2-135m weights ...; retrain"."""
    out = _shipped(tmp_path / "weights", "recogniser", "projector-smollm2")
    monkeypatch.setattr(align_module, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(align_module, "cached_features", lambda *args: torch.zeros(1, 1, 1))

    def train(adapter, features, data, names, domains, config, *_args, **_kwargs):
        """Adapters added as training adds them, then one step's worth of change in each."""
        add_lora(adapter.model.llm, config.rank, config.alpha, config.targets, config.layers)
        with torch.no_grad():
            for layer in lora_layers(adapter.model.llm):
                for name, parameter in layer.named_parameters():
                    if "lora" in name:
                        parameter.add_(0.01)
        return [{"step": 0, "loss": 1.0}]

    monkeypatch.setattr(align_module, "train_lora", train)
    monkeypatch.setattr(align_module, "recognition_table", lambda adapter: pd.DataFrame())
    monkeypatch.setattr(align_module, "summarise", lambda rows: pd.DataFrame({"strict": [1.0]}))
    monkeypatch.setattr(align_module, "check_sample_accuracy", lambda adapter: {})
    align_module.align_lora("smollm2", LoraStageConfig(steps=1), str(out))  # a str folder, as typed
    assert (out / "lora-smollm2.safetensors").is_file()
    tuned = load_embedded_vlm("smollm2", weights_dir=str(out), tuned=True)
    assert tuned.supports_images


def test_a_weights_folder_that_cannot_be_written_is_refused_before_training(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(align_module, "_train_recogniser", lambda *a, **k: trained.append(1))
    in_the_way = tmp_path / "afile"
    in_the_way.write_text("")
    result = CliRunner().invoke(app, ["align", "--stage", "recogniser", "--out", str(in_the_way)])
    assert result.exit_code != 0 and "is a file, not a folder" in result.output
    assert trained == []


def test_options_that_would_fail_mid_training_are_refused():
    with pytest.raises(ValidationError, match="finite"):
        RecogniserConfig(epochs=math.inf)
    for config in (RecogniserConfig, ProjectorConfig, LoraStageConfig):
        with pytest.raises(ValidationError, match="less than or equal to"):
            config(seed=2**64)


def test_a_damaged_sidecar_with_a_matching_checksum_is_one_line(tmp_path):
    folder = _shipped(tmp_path, "recogniser")
    sidecar = folder / "recogniser.json"
    sidecar.write_text("[1, 2]")
    with pytest.raises(ModelSpecError, match="recogniser.json is damaged"):
        sidecar_of(folder / "recogniser.safetensors")


def test_a_damaged_features_cache_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setattr(align_module, "cache_root", lambda: tmp_path)
    monkeypatch.setattr(align_module, "pooled_features", lambda *args: torch.ones(2, 3, 4))
    data = type("Data", (), {"labels": torch.zeros(3)})()
    config = ProjectorConfig()
    key = f"{'a' * 16}-{config.augmented_copies}-{config.seed}-3"
    damaged = tmp_path / "align" / f"features-{key}.pt"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not a tensor file")
    with pytest.warns(UserWarning, match="is damaged"):
        features = align_module.cached_features(None, data, config, "a" * 64)
    assert torch.equal(features, torch.ones(2, 3, 4))
    assert torch.equal(torch.load(damaged, weights_only=True), features)  # written again


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--stage", "projector", "--epochs", "2"], "--epochs sets stage 1"),
        (["--stage", "lora", "--epochs", "2"], "--epochs sets stage 1"),
        (["--stage", "recogniser", "--steps", "5"], "--steps sets stage 2"),
        (["--stage", "recogniser", "--backbone", "smollm2"], "--backbone picks the LLMs stage 2 trains on"),
    ],
)
def test_an_option_the_stage_does_not_use_is_refused_not_ignored(tmp_path, args, said):
    result = CliRunner().invoke(app, ["align", *args, "--out", str(tmp_path / "weights")])
    assert result.exit_code != 0 and said in result.output
    assert not (tmp_path / "weights").exists()


def test_weights_are_written_with_a_plain_files_mode(tmp_path):
    """safetensors' own file came out 0600 beside its 0644 sidecar."""
    import os

    from taskvec.models.embedded.weights import load_weights, save_weights

    path = save_weights(tmp_path / "w.safetensors", {"a": torch.ones(2)}, {"config": {"x": 1}})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert path.with_suffix(".json").stat().st_mode & 0o777 == 0o666 & ~mask
    tensors, info = load_weights(path)
    assert torch.equal(tensors["a"], torch.ones(2)) and info["config"] == {"x": 1}


def test_stage_lora_without_a_backbone_trains_the_ones_whose_tuned_variant_ships(tmp_path, monkeypatch):
    """It trained lora-smollm2 too, which no named model loads."""
    trained = []
    monkeypatch.setattr(align_module, "align_lora", lambda key, *a, **k: trained.append(key) or {})
    result = CliRunner().invoke(app, ["align", "--stage", "lora", "--out", str(tmp_path)])
    assert trained == ["gemma3"], result.output


def test_the_bar_says_it_waits_for_the_features(monkeypatch):
    """Minutes of feature computation sat under a bar at 0 steps with no word."""
    from rich.progress import Progress

    progress = Progress(disable=True)
    bar = progress.add_task("stage 2: projector (smollm2)", total=3)
    said = []
    monkeypatch.setattr(
        align_module, "cached_features", lambda *args: said.append(progress.tasks[0].description) or 1
    )
    assert align_module._features_said(progress, bar, None, None, ProjectorConfig(), "a" * 64) == 1
    assert said == ["stage 2: projector (smollm2): the recogniser's features of the tiles first"]
    assert progress.tasks[0].description == "stage 2: projector (smollm2)"


@pytest.mark.parametrize(
    ("config", "changes"),
    [
        (LoraStageConfig, {"templates": ()}),
        (LoraStageConfig, {"templates": ("paper", "spacey")}),
        (LoraStageConfig, {"relations": ()}),
        (LoraStageConfig, {"category_relations": ()}),
        (LoraStageConfig, {"targets": ()}),
        (LoraStageConfig, {"layers": ()}),
        (ProjectorConfig, {"templates": ()}),
        (ProjectorConfig, {"templates": ("spacey",)}),
    ],
)
def test_a_stage_config_that_would_fail_half_way_into_training_is_refused_when_made(config, changes):
    """An empty choice (or an unknown template) failed at its first draw, after the LLM loaded and
    the features were computed (``IndexError`` from ``random.choice``); now the config says so."""
    with pytest.raises(ValidationError, match=next(iter(changes))):
        config(**changes)
