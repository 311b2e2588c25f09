"""The embedded VLM whose language model was tuned with LoRA (``embedded-vlm-gemma3-lora``): it
loads its checked adapters, it sees, and on text it is no longer the bare LLM (the frozen
variant still is), so LLM -> VLM transfer is an experiment on it.

Slow tests: they load the real Gemma 3 270M and the shipped weights.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from taskvec.errors import ModelSpecError
from taskvec.models.embedded.load import RECOGNISER_FILE, load_embedded_vlm, lora_file
from taskvec.models.embedded.lora import lora_layers
from taskvec.models.embedded.weights import WEIGHTS_DIR
from taskvec.models.registry import load_model
from taskvec.patching.patch import first_token_ids
from taskvec.prompts.template import get_template
from taskvec.tasks.images import load_image

pytestmark = pytest.mark.slow

DOG = "1f415"


@pytest.fixture(scope="module")
def tuned():
    return load_model("embedded-vlm-gemma3-lora")


@pytest.fixture(scope="module")
def frozen():
    """The variant without LoRA, loaded once for the module."""
    return load_model("embedded-vlm-gemma3")


def _logits(adapter, prompts) -> torch.Tensor:
    return adapter.forward(adapter.encode(prompts)).logits


def test_text_logits_differ_from_the_bare_llm_while_the_frozen_variants_equal_it(tuned, frozen):
    template = get_template("spaced")
    prompts = [template.icl([("France", "Paris"), ("Peru", "Lima")], "Japan"), template.query("Chile")]
    bare = load_model("gemma3-270m")
    with torch.no_grad():
        reference = _logits(bare, prompts)
        torch.testing.assert_close(_logits(frozen, prompts), reference)
        difference = (_logits(tuned, prompts) - reference).abs().max()
    assert difference > 1e-2


def test_the_tuned_variant_declares_its_base_llm_as_changed(tuned, frozen):
    """Table 4 then loads the bare LLM on its own instead of borrowing the VLM's modules."""
    base = tuned.base_language_model()
    assert base.name == "gemma3-270m" and base.adapter is None and not base.frozen
    assert tuned.text_adapter is None and not tuned.language_model_is_frozen
    assert lora_layers(tuned.model.llm) and all(layer.merged for layer in lora_layers(tuned.model.llm))
    template = get_template("spaced")
    assert tuned.computes_like([template.query("Chile")]) is tuned
    assert tuned.fingerprint != frozen.fingerprint


def test_the_tuned_variant_still_names_what_it_sees(tuned):
    [token] = first_token_ids(tuned, [get_template("spaced").query(load_image(DOG, "noto"))])
    assert "dog" in tuned.decode([token]).lower()


def test_tampered_adapter_weights_are_refused(tmp_path):
    for name in (RECOGNISER_FILE, lora_file("gemma3")):
        for suffix in (".safetensors", ".json"):
            shutil.copy(WEIGHTS_DIR / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    sidecar = tmp_path / f"{lora_file('gemma3')}.json"
    original = sidecar.read_text()
    info = json.loads(original)
    info["config"]["rank"] *= 2  # a config the adapters were not trained with
    sidecar.write_text(json.dumps(info))
    with pytest.raises(ModelSpecError, match="does not match its hash"):
        load_embedded_vlm("gemma3", weights_dir=tmp_path, tuned=True)
    sidecar.write_text(original)
    with open(tmp_path / f"{lora_file('gemma3')}.safetensors", "r+b") as handle:
        handle.seek(-64, 2)
        handle.write(b"\1" * 16)
    with pytest.raises(ModelSpecError, match="checksum"):
        load_embedded_vlm("gemma3", weights_dir=tmp_path, tuned=True)
