"""Control images from other modalities' conditions: what a ControlNet reads, in [0, 1], at image resolution.

``edges``: a sketch condition (1 channel, lines +1) as white lines on black, the input of scribble, canny and
lineart ControlNets. ``palette``: a segmentation condition (one-hot channels, the unknown channel last) painted
with one colour per channel, the input of a segmentation ControlNet trained on that palette.
"""

from __future__ import annotations

import torch

from mcdm.errors import CheckpointError, ConditionError

CONTROLS = ("edges", "palette")


def default_palette() -> list[list[int]]:
    """CelebAMask-HQ's colours, black for unknown pixels."""
    from mcdm.data.labels import CELEBAMASK_HQ_PALETTE

    return [[int(v) for v in colour] for colour in CELEBAMASK_HQ_PALETTE] + [[0, 0, 0]]


def control_image(kind: str, condition: torch.Tensor, palette: list[list[int]] | None) -> torch.Tensor:
    """(B, C, H, W) condition -> (B, 3, H, W) control image."""
    if kind == "edges":
        if condition.shape[1] != 1:
            raise ConditionError(f"an edges ControlNet reads a 1-channel sketch, got {condition.shape[1]} channels")
        return (condition > 0).float().expand(-1, 3, -1, -1)
    colours = torch.tensor(palette, dtype=torch.float32, device=condition.device) / 255.0
    if condition.shape[1] != colours.shape[0]:
        raise ConditionError(f"a palette ControlNet paints {colours.shape[0]} label channels, got "
                             f"{condition.shape[1]}")
    return torch.einsum("bkhw,kc->bchw", condition.float(), colours)


def check_palette(palette, where: str) -> list[list[int]]:
    ok = isinstance(palette, list) and palette and all(
        isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in palette)
    if not ok:
        raise CheckpointError(f"{where}: key 'palette' must be a list of [r, g, b] colours (0..255), one per channel")
    return palette
