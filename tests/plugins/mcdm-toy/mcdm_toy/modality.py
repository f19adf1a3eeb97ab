"""A grey map (H, W) in [0, 1] as the condition, concatenated to x_t by the built-in ``unet`` denoiser."""

import numpy as np
import torch

from mcdm.errors import ConditionError
from mcdm.inputs import load_array
from mcdm.modality import InputKind, InputSpec, Modality


class GreyMapModality(Modality):
    denoiser_type = "unet"
    input_spec = InputSpec(InputKind.IMAGE)  # a canvas in the page (prepare wants it at the model's size)

    def __init__(self, name: str):
        self.name = name

    def prepare(self, raw, *, size: int) -> torch.Tensor:
        if isinstance(raw, str):
            raw = load_array(raw, modality=self.name) / 255.0
        array = np.asarray(raw, dtype=np.float32)
        if array.ndim == 3 and array.shape[-1] != 1:
            raise ConditionError(f"{self.name}: expected one channel, got {array.shape[-1]}")
        array = array.reshape(array.shape[:2]) if array.ndim == 3 else array
        if array.shape != (size, size):
            raise ConditionError(f"{self.name}: expected a {size}x{size} map, got {array.shape}")
        return torch.from_numpy(array * 2 - 1)[None]

    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        return {"sample_size": sample_size, "image_channels": image_channels, "cond_channels": 1,
                "block_out_channels": (8, 16), "layers_per_block": 1, "attention": False}

    def condition_from_sample(self, sample, rng):
        return sample.image.mean(axis=-1) / 255.0  # the image's grey levels
