"""Alignment of the embedded VLM: the augmentations, and short training runs that must learn."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from taskvec.align.augment import affine, augment
from taskvec.align.projector import (
    AnswerBatch,
    ProjectorConfig,
    answer_loss,
    calibrated_temperature,
    new_projector,
    pooled_features,
    sample_sequences,
    train_projector,
)
from taskvec.align.recogniser import (
    Recogniser,
    RecogniserConfig,
    RecognitionData,
    normalise,
    to_tensor,
    train_recogniser,
)
from taskvec.models.embedded.load import assemble, entity_names, name_token_ids
from taskvec.models.embedded.model import EntityNameProjector
from taskvec.models.vision.efficientnet_lite import load_pretrained
from taskvec.tasks import images as suite


def _small_data(entities_per_domain: int = 4) -> RecognitionData:
    """Noto and Twemoji tiles of a few flags, animals and foods."""
    chosen = [e for d in suite.TASK_DOMAINS for e in suite.entities(d)[:entities_per_domain]]
    recognition = [r for r in suite.recognition_set(["noto", "twemoji"]) if r.entity in chosen]
    arrays = to_tensor(np.stack([np.asarray(r.image) for r in recognition]))
    index = {e: i for i, e in enumerate(chosen)}
    return RecognitionData(
        images=arrays,
        labels=torch.tensor([index[r.entity] for r in recognition]),
        flippable=torch.tensor([suite.entity_info(r.entity)["domain"] != "flags" for r in recognition]),
        entity_ids=chosen,
    )


def test_geometry_leaves_the_uncovered_border_white():
    black = torch.zeros(4, 3, 32, 32)
    moved = affine(black, torch.Generator().manual_seed(0))
    assert moved.shape == black.shape
    corners = moved[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners > 0.5).float().mean() > 0.5  # most corners are now outside the shrunk picture


def test_augmentation_is_fixed_by_its_seed_and_stays_in_range():
    images = torch.rand(6, 3, 48, 48)
    first = augment(images, torch.Generator().manual_seed(7))
    again = augment(images, torch.Generator().manual_seed(7))
    other = augment(images, torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.min() >= 0 and first.max() <= 1


def _clean_loss(model: Recogniser, data: RecognitionData) -> float:
    model.eval()
    with torch.no_grad():
        return float(F.cross_entropy(model(normalise(data.images)), data.labels))


def test_a_few_recogniser_steps_lower_the_loss():
    data = _small_data()
    batches_per_epoch = math.ceil(len(data.labels) / RecogniserConfig().batch_size)
    config = RecogniserConfig(epochs=30 / batches_per_epoch, warmup_steps=3, lr_head=1e-2, seed=1)
    torch.manual_seed(1)
    before = _clean_loss(Recogniser(load_pretrained(), len(data.entity_ids)), data)
    model, log = train_recogniser(config, data.entity_ids, data=data)
    assert len(log) == 30
    assert _clean_loss(model, data) < before - 0.5


@pytest.mark.slow
def test_a_few_projector_steps_lower_the_llm_loss(smollm2):
    data = _small_data(entities_per_domain=3)
    recogniser = Recogniser(load_pretrained(), len(data.entity_ids)).eval()
    projector = EntityNameProjector(len(data.entity_ids), smollm2.hidden_size, tokens_per_image=4)
    projector.classifier.load_state_dict(recogniser.head.state_dict())
    names = entity_names(data.entity_ids)
    projector.set_name_table(smollm2.model.get_input_embeddings(), name_token_ids(smollm2.tokenizer, names))
    adapter = assemble(smollm2, recogniser.encoder, projector, "tiny-align", "test", 96)
    config = ProjectorConfig(steps=12, batch_size=6, augmented_copies=0, lr=2e-2, max_context_examples=1)
    features = pooled_features(recogniser, data, config).flatten(0, 1)
    fixed = AnswerBatch(adapter, sample_sequences(adapter, data, names, config, random.Random(99), copies=1))
    with torch.no_grad():
        before = float(answer_loss(adapter, fixed, features))
    with torch.enable_grad():
        log = train_projector(adapter, features.view(1, *features.shape), data, config)
    with torch.no_grad():
        after = float(answer_loss(adapter, fixed, features))
    assert len(log) == config.steps
    assert after < before


def test_a_new_projector_depends_on_its_seed_alone():
    """Stage 2 builds its projector after loading the LLM, which draws from torch's (randomly
    seeded) global generator: the projector's initial weights must not depend on that."""
    config = ProjectorConfig(seed=3)
    torch.manual_seed(123)
    first = new_projector(10, 32, config).state_dict()
    torch.randn(1000)  # whatever ran before
    second = new_projector(10, 32, config).state_dict()
    other = new_projector(10, 32, ProjectorConfig(seed=4)).state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(first["visual_down.weight"], other["visual_down.weight"])


def test_calibration_finds_the_temperature_that_fits_the_augmented_copies():
    """Two entities, logits (2, 0) on every augmented picture, the first entity right on 90% of
    them: the NLL is least where softmax(2 / T) gives 0.9, T = 2 / ln 9 = 0.91. The clean copy
    (always right, which would call for a colder T) is left out."""
    classifier = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        classifier.weight.copy_(torch.eye(2))
    labels = torch.tensor([0] * 9 + [1])
    augmented = torch.tensor([[2.0, 0.0]] * 10)
    clean = torch.stack([F.one_hot(label, 2).float() * 20 for label in labels])
    features = torch.stack([clean, augmented, augmented])  # [copies, n, features]
    temperature = calibrated_temperature(classifier, features, labels)
    assert abs(temperature - 2 / math.log(9)) < 0.05
    with pytest.raises(ValueError, match="augmented copies"):
        calibrated_temperature(classifier, features[:1], labels)


def test_pooled_features_meet_the_encoder_on_its_device(monkeypatch):
    """On CUDA, stage 2 fed CPU tiles to the encoder the VLM had moved to the GPU. The encoder is
    put on ``meta`` here, a device that is not the tiles'; its forward records what it meets."""
    data = _small_data(entities_per_domain=1)
    recogniser = Recogniser(load_pretrained(), len(data.entity_ids))
    recogniser.encoder.to("meta")
    met = []

    def forward_pooled(images):
        met.append(images.device)
        return torch.ones(len(images), 8)

    monkeypatch.setattr(recogniser.encoder, "forward_pooled", forward_pooled)
    features = pooled_features(recogniser, data, ProjectorConfig(augmented_copies=1))
    assert met and all(device.type == "meta" for device in met)
    assert features.device.type == "cpu" and features.shape == (2, len(data.labels), 8)
