"""``taskvec align``: its bar tells the time when each step takes minutes, and stage 2 (projector
alone, or with LoRA) trains the VLM that one function builds."""

from __future__ import annotations

import json

import torch
from helpers.bars import FakeClock, bar_text
from helpers.tinyllm import tiny_text_lm

from taskvec.align.lora import LoraStageConfig
from taskvec.align.projector import ProjectorConfig, new_projector
from taskvec.align.recogniser import Recogniser
from taskvec.models.embedded.load import entity_names, name_token_ids
from taskvec.models.embedded.weights import WEIGHTS_DIR
from taskvec.models.vision.efficientnet_lite import EfficientNetLite0
from taskvec.pipelines.align import _lora_training_data, training_bar
from taskvec.pipelines.align import training_vlm as build
from taskvec.tasks import images as suite


def test_the_training_bar_shows_an_eta_on_steps_of_minutes_and_the_loss():
    clock = FakeClock()
    progress = training_bar(show=True, get_time=clock)
    bar = progress.add_task("stage 2: projector", total=20, loss=float("nan"))
    assert "-:--:--" in bar_text(progress)
    for step in range(2):
        clock.now += 90  # a step of a minute and a half (rich's own column forgets after 30 s)
        progress.update(bar, completed=step + 1, loss=0.5)
    row = bar_text(progress)
    assert "~0:27:00 left" in row and "2/20" in row and "loss 0.500" in row  # 18 steps x 90 s


def test_stage_two_trains_the_projector_between_the_encoder_and_the_llm():
    llm = tiny_text_lm("gemma3-hybrid")
    entity_ids = suite.entities()[:5]
    info = {"entity_ids": entity_ids, "config": {"image_size": 32}}
    recogniser = Recogniser(EfficientNetLite0(), len(entity_ids))
    config = ProjectorConfig(tokens_per_image=2, visual_rank=4)
    for tuned in (False, True):
        projector = new_projector(len(entity_ids), llm.hidden_size, config)
        vlm = build(llm, recogniser, info, projector, "tiny-training", tuned=tuned)
        assert vlm.model.llm is llm.model and vlm.model.encoder is recogniser.encoder  # shared, not copied
        assert vlm.image_size == 32 and vlm.language_model_is_frozen is not tuned
        assert (vlm.text_adapter is None) is tuned  # a tuned LLM does not lend its text adapter
        # each entity's name table row: the LLM's embeddings of the name's tokens, right-aligned
        ids = name_token_ids(llm.tokenizer, entity_names(entity_ids))
        for entity, tokens in enumerate(ids):
            tokens = tokens[:2]
            expected = llm.model.get_input_embeddings()(torch.tensor(tokens)).float()
            torch.testing.assert_close(projector.name_table[entity, 2 - len(tokens) :], expected)
        assert {p.device for p in vlm.model.parameters()} == {llm.device}


def test_the_shipped_adapters_account_of_their_data_is_what_their_config_writes():
    """The sidecar's ``training_data`` is rebuilt from the recorded config word for word, and it
    names only the relations a recipe trained."""
    shipped = json.loads((WEIGHTS_DIR / "lora-gemma3.json").read_text())
    assert _lora_training_data(LoraStageConfig(**shipped["config"])) == shipped["training_data"]
    domain_only = _lora_training_data(LoraStageConfig(relations=("domain",)))
    assert "(itself, its suite domain)" in domain_only and "capitals" not in domain_only
