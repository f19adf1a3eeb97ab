"""Hair colour: one class label per image, embedded and added to the UNet's time embedding.

``prepare`` takes a colour name (``"blond"``) or its id and returns a 0-dim long tensor; a batch of them is
``(B,)``. The null label is one more id than the colours, so "no hair colour given" is never a colour.
"""

from __future__ import annotations

from typing import Any

import torch

from mcdm.data.attributes import HAIR_COLORS
from mcdm.errors import ConditionError
from mcdm.modality import InputKind, InputSpec, Modality
from mcdm_hair import DENOISER_TYPE

NULL_LABEL = len(HAIR_COLORS)  # ids 0..4 are the colours, 5 is "none given"


class HairModality(Modality):
    name = "hair"
    denoiser_type = DENOISER_TYPE
    input_spec = InputSpec(InputKind.CHOICE, choices=HAIR_COLORS)

    def prepare(self, raw: Any, *, size: int) -> torch.Tensor:
        """A colour name or id -> a 0-dim int64 tensor in [0, 5). ``size`` is not used: a label has no pixels."""
        if isinstance(raw, str) and raw.strip().lower() in HAIR_COLORS:
            return torch.tensor(HAIR_COLORS.index(raw.strip().lower()))
        if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < NULL_LABEL:
            return torch.tensor(raw)
        raise ConditionError(f"hair: expected one of {', '.join(HAIR_COLORS)} (or its id 0..{NULL_LABEL - 1}), "
                             f"got {raw!r}")

    def null_condition(self, condition: torch.Tensor) -> torch.Tensor:
        """The null label, in the condition's shape."""
        return torch.full_like(condition, NULL_LABEL)

    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        """The shipped prior's architecture (so ``init_from`` can start from it) with a label embedding."""
        return {"sample_size": sample_size, "image_channels": image_channels, "condition": "label",
                "condition_dim": NULL_LABEL + 1, "block_out_channels": (32, 64, 64), "layers_per_block": 2,
                "attention": True}

    def condition_from_sample(self, sample, rng):
        return sample.attributes.hair_color
