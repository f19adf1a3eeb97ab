"""Training-time augmentation for the judges: mirror faces, and degrade them like imperfect samples.

A judge scores generated faces, which are a little noisy, soft and off-colour compared with the renders it
learns from. ``degrade`` applies exactly those defects (small colour jitter, Gaussian blur, Gaussian noise),
kept small enough that no judged attribute changes (a blond face stays blond). ``mirror`` flips faces
left-right and swaps the left/right part labels with them.

Everything works on float ``(N, 3, H, W)`` batches in [-1, 1] and draws from an explicit ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mcdm.config_reference import key
from mcdm.data.labels import LABELS

_SWAPPED = (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear"))


def mirrored_labels() -> torch.Tensor:
    """The lookup table ``id -> id`` that a left-right flip applies to a label map (l_eye <-> r_eye, ...)."""
    table = torch.arange(len(LABELS))
    for left, right in _SWAPPED:
        i, j = LABELS.index(left), LABELS.index(right)
        table[i], table[j] = j, i
    return table


@dataclass(frozen=True)
class Augmentation:
    """How strongly ``degrade`` and ``mirror`` perturb a batch. Intensities are in [-1, 1] image units."""

    flip: float = key(0.5, "probability of a left-right flip")
    brightness: float = key(0.08, "each image is scaled by a factor in [1 - brightness, 1 + brightness]")
    contrast: float = key(0.1, "... its contrast around its mean by [1 - contrast, 1 + contrast]")
    saturation: float = key(0.12, "... its saturation by [1 - saturation, 1 + saturation]")
    channel_gain: float = key(0.03, "... and each colour channel by [1 - gain, 1 + gain]")
    blur: float = key(0.3, "probability of a Gaussian blur")
    blur_sigma_min: float = key(0.3, "the blur's standard deviation in pixels is uniform in [min, max]")
    blur_sigma_max: float = key(0.8, "... and at most this")
    noise: float = key(0.5, "probability of additive Gaussian noise")
    noise_sigma_max: float = key(0.08, "the noise's standard deviation, uniform in [0, max]")


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def mirror(
    images: torch.Tensor, masks: torch.Tensor | None, p: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Flip each face left-right with probability ``p``; its mask (``(N, H, W)`` ids) flips and swaps sides."""
    flip = torch.rand(images.shape[0], generator=generator) < p
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if masks is not None:
        masks = torch.where(flip[:, None, None], mirrored_labels()[masks.flip(-1).long()], masks.long())
    return images, masks


def _gaussian_kernels(sigma: torch.Tensor, radius: int = 2) -> torch.Tensor:
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernels = torch.exp(-(offsets[None] ** 2) / (2 * sigma[:, None] ** 2))
    return kernels / kernels.sum(dim=1, keepdim=True)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image with its own Gaussian (``sigma``: ``(N,)`` pixels), 5x5, reflected borders."""
    n, c, h, w = images.shape
    kernel = _gaussian_kernels(sigma).repeat_interleave(c, dim=0)  # (N*C, 5)
    x = F.pad(images.reshape(1, n * c, h, w), (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, kernel[:, None, None, :], groups=n * c)
    x = F.conv2d(x, kernel[:, None, :, None], groups=n * c)
    return x.reshape(n, c, h, w)


def degrade(images: torch.Tensor, augmentation: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Colour jitter, then (sometimes) blur, then (sometimes) noise; the result is clipped to [-1, 1]."""
    a, n = augmentation, images.shape[0]
    x = (images + 1) / 2  # jitter in [0, 1]
    x = x * _uniform(n, 1 - a.brightness, 1 + a.brightness, generator)[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * _uniform(n, 1 - a.contrast, 1 + a.contrast, generator)[:, None, None, None]
    gray = x.mean(dim=1, keepdim=True)
    x = gray + (x - gray) * _uniform(n, 1 - a.saturation, 1 + a.saturation, generator)[:, None, None, None]
    x = x * _uniform(n * 3, 1 - a.channel_gain, 1 + a.channel_gain, generator).reshape(n, 3, 1, 1)
    x = x.clamp(0, 1) * 2 - 1
    if a.blur > 0:
        blurred = gaussian_blur(x, _uniform(n, a.blur_sigma_min, a.blur_sigma_max, generator))
        x = torch.where((torch.rand(n, generator=generator) < a.blur)[:, None, None, None], blurred, x)
    if a.noise > 0:
        sigma = _uniform(n, 0.0, a.noise_sigma_max, generator) * (torch.rand(n, generator=generator) < a.noise)
        x = x + sigma[:, None, None, None] * torch.randn(x.shape, generator=generator)
    return x.clamp(-1, 1)
