"""The joint condition: any subset of {sketch, segmentation, text}, packed into one tensor.

Layout ``(1 + 20 + 1, H, W)``: the sketch channel, the mask's 20 channels (one-hot + unknown), then a
*token plane* holding the caption's token ids in its first ``context_length`` entries (row-major) as
float32, which represents every id of open_clip's 49,408-token vocabulary exactly. One tensor keeps the
engine's batching (conditions and their nulls concatenated along the batch) unchanged. A part that is
not given is that modality's own null condition, so the oracle answers any subset of the inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from mcdm.errors import ConditionError
from mcdm.modality import Modality
from mcdm_joint import DENOISER_TYPE, MODALITY_NAME
from mcdm_segmentation.modality import CHANNELS as MASK_CHANNELS
from mcdm_segmentation.modality import SegmentationModality
from mcdm_sketch.modality import SketchModality
from mcdm_text.modality import TextModality
from mcdm_text.tokens import null_tokens

PARTS = ("sketch", "segmentation", "text")
IMAGE_PART_CHANNELS = {"sketch": 1, "segmentation": MASK_CHANNELS}
PART_DROPOUT = 0.1  # each part is left out of a training condition this often, so subsets are learned too


class JointModality(Modality):
    name = MODALITY_NAME
    denoiser_type = DENOISER_TYPE
    combines = PARTS

    def __init__(self):
        self.parts = {"sketch": SketchModality(), "segmentation": SegmentationModality(), "text": TextModality()}

    @property
    def context_length(self) -> int:
        return self.parts["text"].context_length

    def prepare(self, raw: Any, *, size: int) -> torch.Tensor:
        if not isinstance(raw, Mapping):
            raise ConditionError(f"joint: expected a mapping of {', '.join(PARTS)} to their inputs, "
                                 f"got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(PARTS))
        if unknown:
            raise ConditionError(f"joint: unknown parts {unknown}; it reads {', '.join(PARTS)}")
        if size * size < self.context_length:
            raise ConditionError(f"joint: {size}x{size} is too small to carry {self.context_length} caption tokens")
        sketch = self._part("sketch", raw, size)
        mask = self._part("segmentation", raw, size)
        tokens = self._part("text", raw, size)
        plane = torch.zeros(size * size)
        plane[: tokens.numel()] = tokens.float()
        return torch.cat([sketch, mask, plane.view(1, size, size)])

    def _part(self, name: str, raw: Mapping, size: int) -> torch.Tensor:
        modality = self.parts[name]
        if name in raw:
            return modality.prepare(raw[name], size=size)
        if name == "text":
            return null_tokens(self.context_length)
        return modality.null_condition(torch.zeros(IMAGE_PART_CHANNELS[name], size, size))

    def null_condition(self, condition: torch.Tensor) -> torch.Tensor:
        null = torch.zeros_like(condition)
        null[1:-1] = self.parts["segmentation"].null_condition(condition[1:-1])
        null[-1].view(-1)[: self.context_length] = null_tokens(self.context_length).float()
        return null

    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        """The text model's architecture (and frozen text tower) with the sketch and mask channels concatenated."""
        config = self.parts["text"].denoiser_config(sample_size=sample_size, image_channels=image_channels)
        return {**config, "cond_channels": sum(IMAGE_PART_CHANNELS.values())}

    def condition_from_sample(self, sample: Any, rng: Any) -> dict[str, Any]:
        """Each part as its own modality trains on it, each left out with probability ``PART_DROPOUT``."""
        given = {name: self.parts[name].condition_from_sample(sample, rng) for name in PARTS}
        return {name: value for name, value in given.items() if rng.random() >= PART_DROPOUT}
