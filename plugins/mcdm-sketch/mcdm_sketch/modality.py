"""Sketch: a binary edge map concatenated to x_t. Lines are +1, blank paper -1, unknown (erased) 0."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from mcdm.inputs import check_image, load_array
from mcdm.modality import InputKind, InputSpec, Modality

# A drawing is (nearly) two-valued; a photo has many grey levels. Share of pixels near black or white:
DRAWING_EXTREME_SHARE = 0.85


class SketchModality(Modality):
    name = "sketch"
    denoiser_type = "unet"
    face_part = "sketch"
    input_spec = InputSpec(InputKind.IMAGE)  # a canvas: strokes drawn at any size, or an uploaded photo

    def prepare(self, raw: Any, *, size: int) -> torch.Tensor:
        array = check_image(load_array(raw, modality=self.name), modality=self.name, channels=(1, 3, 4))
        edges = edges_at(array, size)
        return torch.from_numpy(np.where(edges, 1.0, -1.0).astype(np.float32))[None]

    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        return {"sample_size": sample_size, "image_channels": image_channels, "cond_channels": 1,
                "block_out_channels": (32, 64, 64), "layers_per_block": 2, "attention": True}

    def condition_from_sample(self, sample, rng):
        from mcdm.data.partial import erase_strokes

        sketch = sample.sketch
        if rng.random() < 0.3:  # partial sketches: the model must accept missing strokes
            sketch = erase_strokes(sketch, rng)
        return sketch


def edges_at(array: np.ndarray, size: int) -> np.ndarray:
    """A boolean (size, size) edge map from a drawing (either polarity) or a photo (Canny at the target size)."""
    from mcdm.data.sketch import sketch_from_image

    pixels = array.astype(np.float32)
    if pixels.max() <= 1.0:  # float images in [0, 1]
        pixels = pixels * 255.0
    grey = pixels[..., :3].mean(axis=-1)
    extreme = np.mean((grey < 32) | (grey > 223))
    if extreme < DRAWING_EXTREME_SHARE and array.shape[-1] >= 3:  # a photo: edges at the model's resolution
        rgb = Image.fromarray(pixels[..., :3].clip(0, 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
        return sketch_from_image(np.asarray(rgb)) > 0
    if np.mean(grey > 127) > 0.5:  # black lines on white paper
        grey = 255.0 - grey
    # area resampling keeps thin lines as grey pixels; any clear trace of ink is a line
    small = np.asarray(Image.fromarray(grey.clip(0, 255).astype(np.uint8)).resize((size, size), Image.BOX))
    return small >= 64
