"""The joint condition: any subset of {sketch, segmentation, text}, packed into one tensor.

Layout ``(1 + 20 + 1, H, W)``: the sketch channel, the mask's 20 channels (one-hot + unknown), then a
*token plane* holding the caption's token ids in its first ``context_length`` entries (row-major) as
float32, which represents every id of open_clip's 49,408-token vocabulary exactly. One tensor keeps the
engine's batching (conditions and their nulls concatenated along the batch) unchanged. A part that is
not given is that modality's own null condition, so the oracle answers any subset of the inputs.

The parts are the registered modalities of those names: each image-like part takes as many channels as its own
denoiser concatenates to x_t (its ``denoiser_config``'s ``cond_channels``), and the text part's null condition
is the null caption's tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from mcdm.errors import ConditionError
from mcdm.modality import Modality
from mcdm_joint import DENOISER_TYPE, MODALITY_NAME

IMAGE_PARTS = ("sketch", "segmentation")  # in the condition's channel order
TEXT_PART = "text"
PARTS = (*IMAGE_PARTS, TEXT_PART)
PART_DROPOUT = 0.1  # each part is left out of a training condition this often, so subsets are learned too


class JointModality(Modality):
    name = MODALITY_NAME
    denoiser_type = DENOISER_TYPE
    combines = PARTS

    def __init__(self, parts: Mapping[str, Modality]):
        """``parts``: the sketch, segmentation and text modalities (a plugin set's ``modality(name)``)."""
        self.parts = {name: parts[name] for name in PARTS}
        self.channels = {name: _cond_channels(self.parts[name]) for name in IMAGE_PARTS}

    @property
    def context_length(self) -> int:
        return self.parts[TEXT_PART].context_length

    def prepare(self, raw: Any, *, size: int) -> torch.Tensor:
        if not isinstance(raw, Mapping):
            raise ConditionError(f"joint: expected a mapping of {', '.join(PARTS)} to their inputs, "
                                 f"got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(PARTS))
        if unknown:
            raise ConditionError(f"joint: unknown parts {unknown}; it reads {', '.join(PARTS)}")
        if size * size < self.context_length:
            raise ConditionError(f"joint: {size}x{size} is too small to carry {self.context_length} caption tokens")
        images = [self._image_part(name, raw, size) for name in IMAGE_PARTS]
        tokens = self.parts[TEXT_PART].prepare(raw[TEXT_PART], size=size) if TEXT_PART in raw else self._null_tokens()
        plane = torch.zeros(size * size)
        plane[: tokens.numel()] = tokens.float()
        return torch.cat([*images, plane.view(1, size, size)])

    def _image_part(self, name: str, raw: Mapping, size: int) -> torch.Tensor:
        modality = self.parts[name]
        if name in raw:
            return modality.prepare(raw[name], size=size)
        return modality.null_condition(torch.zeros(self.channels[name], size, size))

    def _null_tokens(self, device: torch.device | str = "cpu") -> torch.Tensor:
        empty = torch.zeros(self.context_length, dtype=torch.long, device=device)
        return self.parts[TEXT_PART].null_condition(empty)

    def null_condition(self, condition: torch.Tensor) -> torch.Tensor:
        null = torch.zeros_like(condition)
        start = 0
        for name in IMAGE_PARTS:
            end = start + self.channels[name]
            null[start:end] = self.parts[name].null_condition(condition[start:end])
            start = end
        null[-1].view(-1)[: self.context_length] = self._null_tokens(condition.device).float()
        return null

    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        """The text model's architecture (and frozen text tower) with the sketch and mask channels concatenated."""
        config = self.parts[TEXT_PART].denoiser_config(sample_size=sample_size, image_channels=image_channels)
        return {**config, "cond_channels": sum(self.channels.values())}

    def condition_from_sample(self, sample: Any, rng: Any) -> dict[str, Any]:
        """Each part as its own modality trains on it, each left out with probability ``PART_DROPOUT``."""
        given = {name: self.parts[name].condition_from_sample(sample, rng) for name in PARTS}
        return {name: value for name, value in given.items() if rng.random() >= PART_DROPOUT}


def _cond_channels(part: Modality) -> int:
    """The channels an image-like part's own denoiser concatenates to x_t: what it takes in the joint condition."""
    return int(part.denoiser_config(sample_size=1, image_channels=3)["cond_channels"])
