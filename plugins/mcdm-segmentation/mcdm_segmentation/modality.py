"""Segmentation: a label map as one-hot channels plus an "unknown" channel, concatenated to x_t.

Ids follow CelebAMask-HQ (``mcdm.data.labels.LABELS``); ``UNKNOWN`` marks pixels nobody knows, which is
not background. The known region is the combiner's weight map: a partial mask only speaks where it is known.
A mask is an id map (one channel, 255 = unknown) or a picture in the CelebAMask-HQ palette, where grey
(128, 128, 128; as ``colorize_mask`` draws it) and white (255, 255, 255) both mean unknown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from mcdm.data.labels import CELEBAMASK_HQ_PALETTE, LABELS, UNKNOWN, UNKNOWN_COLOR
from mcdm.errors import ConditionError
from mcdm.inputs import check_image, load_array
from mcdm.modality import InputKind, InputSpec, Label, Modality

NUM_LABELS = len(LABELS)
CHANNELS = NUM_LABELS + 1  # one-hot labels, then the unknown channel
UNKNOWN_COLORS = (UNKNOWN_COLOR, (255, 255, 255))  # no palette entry is grey or white


class SegmentationModality(Modality):
    name = "segmentation"
    denoiser_type = "unet"
    face_part = "mask"
    input_spec = InputSpec(
        InputKind.LABEL_MAP,
        labels=tuple(Label(i, name, tuple(int(c) for c in CELEBAMASK_HQ_PALETTE[i])) for i, name in enumerate(LABELS)),
        unknown=UNKNOWN,
    )

    def prepare(self, raw: Any, *, size: int) -> torch.Tensor:
        labels = check_image(load_array(raw, modality=self.name, keep_palette=True), modality=self.name,
                             channels=(1, 3, 4))
        labels = label_ids(labels)
        labels = np.asarray(Image.fromarray(labels).resize((size, size), Image.NEAREST))
        return one_hot(labels)

    def null_condition(self, condition: torch.Tensor) -> torch.Tensor:
        """Nothing known anywhere: every pixel in the unknown channel."""
        null = torch.zeros_like(condition)
        null[NUM_LABELS] = 1.0
        return null

    def weight_map(self, condition: torch.Tensor) -> torch.Tensor:
        return 1.0 - condition[NUM_LABELS]

    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        return {"sample_size": sample_size, "image_channels": image_channels, "cond_channels": CHANNELS,
                "block_out_channels": (32, 64, 64), "layers_per_block": 2, "attention": True}

    def condition_from_sample(self, sample, rng):
        from mcdm.data.partial import drop_mask_parts, unknown_region

        mask = sample.mask
        draw = rng.random()
        if draw < 0.2:
            mask = drop_mask_parts(mask, rng)
        elif draw < 0.4:
            mask = unknown_region(mask, rng)
        return mask


def label_ids(array: np.ndarray) -> np.ndarray:
    """HxW uint8 ids from an id map (1 channel) or a CelebAMask-HQ palette image (RGB); errors name bad values."""
    if array.shape[-1] >= 3:
        rgb = array[..., :3].astype(np.int64)
        codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        palette = CELEBAMASK_HQ_PALETTE.astype(np.int64)
        palette_codes = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
        lookup = {int(c): i for i, c in enumerate(palette_codes)}
        lookup.update({(r << 16) | (g << 8) | b: UNKNOWN for r, g, b in UNKNOWN_COLORS})
        unique, inverse = np.unique(codes, return_inverse=True)
        missing = [u for u in unique if int(u) not in lookup]
        if missing:
            c = int(missing[0])
            unknown = " or ".join(str(colour) for colour in UNKNOWN_COLORS)
            raise ConditionError(
                f"segmentation: colour ({c >> 16}, {(c >> 8) & 255}, {c & 255}) is not in the CelebAMask-HQ palette "
                f"({len(missing)} colour(s) outside it), and unknown is {unknown}; give an id map or a palette image"
            )
        return np.array([lookup[int(u)] for u in unique], dtype=np.uint8)[inverse].reshape(codes.shape)
    ids = array[..., 0]
    if np.issubdtype(ids.dtype, np.floating):
        if not np.all(ids == np.round(ids)):
            raise ConditionError("segmentation: label ids must be whole numbers")
    bad = np.setdiff1d(np.unique(ids), [*range(NUM_LABELS), UNKNOWN])
    if bad.size:
        raise ConditionError(
            f"segmentation: label id {int(bad[0])} is outside the CelebAMask-HQ set 0..{NUM_LABELS - 1} "
            f"(or {UNKNOWN} for unknown)"
        )
    return ids.astype(np.uint8)


def one_hot(labels: np.ndarray) -> torch.Tensor:
    """(CHANNELS, H, W) float: one-hot ids, the unknown channel last."""
    ids = torch.from_numpy(labels.astype(np.int64))
    ids[ids == UNKNOWN] = NUM_LABELS
    return torch.nn.functional.one_hot(ids, CHANNELS).permute(2, 0, 1).float()
