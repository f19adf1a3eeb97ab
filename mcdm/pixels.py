"""The one conversion between stored pixels and model space: uint8 (N, H, W, C) arrays <-> float (N, C, H, W)
tensors in [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch


def to_model_range(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images (N, H, W, C), an array or a tensor, as a float32 (N, C, H, W) tensor in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    return tensor.permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Float (N, C, H, W) images in [-1, 1] (clamped first) as a uint8 (N, H, W, C) array."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
