"""The learning rate of every trainer: linear warm-up, then constant, or cosine decay to ``floor`` x the peak."""

from __future__ import annotations

import math
from typing import Literal

Decay = Literal["constant", "cosine"]


def learning_rate(step: int, *, peak: float, steps: int, warmup: int, decay: Decay = "cosine",
                  floor: float = 0.0) -> float:
    """The learning rate at ``step`` (0-based) of a run of ``steps``; ``peak=1.0`` gives the multiplier that
    ``torch.optim.lr_scheduler.LambdaLR`` wants.

    Warm-up rises linearly over ``warmup`` steps to ``peak``; cosine decay reaches ``floor * peak`` at ``steps``.
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    if decay == "constant":
        return peak
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
