"""Batch augmentations that push a recogniser from the training styles towards unseen ones.

The held-out style (OpenMoji) differs from the training styles mostly in drawing, not in
content: thick dark outlines, flat colours, other proportions. So the augmentations draw
outlines, flatten colours, blur and pixelate, move and rotate, and jitter brightness, contrast
and saturation — but never hue, because a flag's colours are its identity. Horizontal flips
only for entities whose mirror image is the same thing (animals and foods, not flags).

Everything works on a float batch ``[batch, 3, H, W]`` in [0, 1] on a white background, with a
``torch.Generator`` so a seed fixes every draw.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _chance(batch: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """A ``[batch, 1, 1, 1]`` mask that is 1 with probability ``p``."""
    return (torch.rand(batch, 1, 1, 1, generator=gen) < p).float()


def _uniform(batch: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(batch, 1, 1, 1, generator=gen)


def affine(images: torch.Tensor, gen: torch.Generator, flippable: torch.Tensor | None = None) -> torch.Tensor:
    """Random scale (0.75-1.1), rotation (±15°), shift (±10 %), and flips where allowed; the
    uncovered border stays white."""
    batch = images.shape[0]
    scale = _uniform(batch, 0.75, 1.1, gen).view(batch)
    angle = _uniform(batch, -15, 15, gen).view(batch) * math.pi / 180
    shift = (torch.rand(batch, 2, generator=gen) - 0.5) * 0.2
    flip = torch.ones(batch)
    if flippable is not None:
        flip = torch.where((torch.rand(batch, generator=gen) < 0.5) & flippable, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], -1), torch.stack([sin * flip, cos, shift[:, 1]], -1)], 1
    )  # [batch, 2, 3]
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # sample the "ink" (1 - image) so that outside the picture is 0 ink = white
    return 1 - F.grid_sample(1 - images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def colour_jitter(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation; a few images go grey."""
    batch = images.shape[0]
    grey = images.mul(torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    saturation = _uniform(batch, 0.6, 1.4, gen) * (1 - _chance(batch, 0.05, gen))
    images = grey + (images - grey) * saturation
    mean = grey.mean(dim=(2, 3), keepdim=True)
    images = mean + (images - mean) * _uniform(batch, 0.7, 1.3, gen)
    images = images + _uniform(batch, -0.12, 0.12, gen)
    return images.clamp(0, 1)


def outline(images: torch.Tensor, gen: torch.Generator, p: float = 0.35) -> torch.Tensor:
    """Draw a dark line along colour edges and along the picture's silhouette."""
    batch = images.shape[0]
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernels = torch.stack([sobel, sobel.T]).unsqueeze(1)  # [2, 1, 3, 3]
    grey = images.mean(1, keepdim=True)
    grad = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernels)
    edges = grad.pow(2).sum(1, keepdim=True).sqrt()
    threshold = _uniform(batch, 0.15, 0.45, gen)
    line = (edges > threshold).float()
    width = int(torch.randint(1, 3, (1,), generator=gen))
    line = F.max_pool2d(line, 2 * width + 1, stride=1, padding=width) if width > 1 else line
    ink = _uniform(batch, 0.0, 0.25, gen)
    drawn = images * (1 - line) + ink * line
    apply = _chance(batch, p, gen)
    return drawn * apply + images * (1 - apply)


def flatten_colours(images: torch.Tensor, gen: torch.Generator, p: float = 0.3) -> torch.Tensor:
    """Posterise to a few levels per channel (flat fills instead of gradients)."""
    batch = images.shape[0]
    levels = torch.randint(3, 7, (batch, 1, 1, 1), generator=gen).float()
    flat = torch.round(images * levels) / levels
    apply = _chance(batch, p, gen)
    return flat * apply + images * (1 - apply)


def soften(images: torch.Tensor, gen: torch.Generator, p_blur: float = 0.2, p_pixel: float = 0.15):
    """Blur some images, pixelate others (rendering at another resolution)."""
    batch, _, height, width = images.shape
    blurred = F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    apply = _chance(batch, p_blur, gen)
    images = blurred * apply + images * (1 - apply)
    factor = int(torch.randint(2, 4, (1,), generator=gen))
    small = F.interpolate(images, scale_factor=1 / factor, mode="area")
    pixelated = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
    apply = _chance(batch, p_pixel, gen)
    return pixelated * apply + images * (1 - apply)


def augment(
    images: torch.Tensor, gen: torch.Generator, flippable: torch.Tensor | None = None
) -> torch.Tensor:
    """The full training augmentation: geometry, colour, drawing style."""
    images = affine(images, gen, flippable)
    images = colour_jitter(images, gen)
    images = outline(images, gen)
    images = flatten_colours(images, gen)
    images = soften(images, gen)
    return images.clamp(0, 1)
