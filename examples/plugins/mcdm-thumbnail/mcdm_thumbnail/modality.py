"""Thumbnail: the face's colour layout as a GRID x GRID thumbnail, concatenated to x_t.

Any square RGB image is reduced to GRID x GRID cells by area averaging, shown at the model's size by nearest
upsampling and scaled to [-1, 1]. A fourth "known" channel is 1 for a real thumbnail and 0 in the null condition,
so "no thumbnail" never looks like a real (mid-grey) one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mcdm.errors import ConditionError
from mcdm.inputs import check_image, load_array
from mcdm.modality import Modality

GRID = 8  # the thumbnail is GRID x GRID colour cells


class ThumbnailModality(Modality):
    name = "thumbnail"
    denoiser_type = "unet"

    def prepare(self, raw: Any, *, size: int) -> torch.Tensor:
        """A (4, size, size) float tensor: 3 colour channels in [-1, 1] and a "known" channel of ones."""
        array = check_image(load_array(raw, modality=self.name), modality=self.name, channels=(3,))
        cells = area_average(unit_range(array, modality=self.name), GRID)  # (GRID, GRID, 3) in [0, 1]
        rows = np.arange(size) * GRID // size  # nearest upsampling: output pixel -> its cell
        colour = cells[rows][:, rows].transpose(2, 0, 1) * 2.0 - 1.0
        known = np.ones((1, size, size))
        return torch.from_numpy(np.concatenate([colour, known]).astype(np.float32))

    def null_condition(self, condition: torch.Tensor) -> torch.Tensor:
        """Mid-grey with the "known" channel at 0: no real thumbnail has known = 0."""
        return torch.zeros_like(condition)

    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        return {"sample_size": sample_size, "image_channels": image_channels, "cond_channels": 4,
                "block_out_channels": (32, 64, 64), "layers_per_block": 2, "attention": True}

    def condition_from_sample(self, sample, rng):
        return sample.image  # the face itself: prepare() makes the thumbnail


def unit_range(array: np.ndarray, *, modality: str) -> np.ndarray:
    """HxWx3 pixels as float64 in [0, 1]: 8-bit integers are divided by 255, floats must already be in [0, 1]."""
    if array.shape[0] == 0:
        raise ConditionError(f"{modality}: the image is empty (0x0 pixels)")
    if np.issubdtype(array.dtype, np.floating):
        if array.min() < 0 or array.max() > 1:
            raise ConditionError(f"{modality}: a float image must be in [0, 1], got values in "
                                 f"[{array.min():.3g}, {array.max():.3g}]")
        return array.astype(np.float64)
    if np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() <= 255:
        return array.astype(np.float64) / 255.0
    raise ConditionError(f"{modality}: expected 8-bit (0..255) or float (0..1) pixels, got {array.dtype} "
                         f"with values in [{array.min()}, {array.max()}]")


def area_average(pixels: np.ndarray, grid: int) -> np.ndarray:
    """Exact area averaging of a square HxWxC image to grid x grid x C (any H, divisible by grid or not).

    Cell i covers [i * H / grid, (i + 1) * H / grid); each pixel counts with the length of its overlap.
    """
    n = pixels.shape[0]
    edges = np.arange(grid + 1) * n / grid
    start = np.arange(n)
    overlap = np.minimum(edges[1:, None], start[None] + 1) - np.maximum(edges[:-1, None], start[None])
    weights = np.clip(overlap, 0, None) / (n / grid)  # (grid, n), each row sums to 1
    return np.einsum("iy,yxc,jx->ijc", weights, pixels, weights)
