"""The combiner: noise predictions of independently trained models merged into one (pure tensor code).

With an unconditional prior eps_u and conditional predictions eps_i (DESIGN.md):

    eps* = eps_u + sum_i w_i * (eps_i - b_i)

- w_i = 1 for all i and b_i = eps_u is MCDM (eq. 12): sum_i eps_i - (N - 1) eps_u;
- scalar w_i is Composable Diffusion's weighted conjunction; a negative w_i is negation (NOT);
- w_i may be a per-pixel map broadcast against eps (a partial mask speaks only where it is known);
- b_i may be model i's own null-condition output ("own" baseline) instead of the shared prior.

Time schedules live in :class:`TimeWindow`, evaluated on the host from the (CPU) timestep, so nothing
here synchronises with the device.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # only tensor methods are called: importing this module (and the configs) needs no torch
    import torch


class Baseline(str, Enum):
    SHARED = "shared"  # b_i = eps_u, the shared prior
    OWN = "own"  # b_i = model i's own null-condition prediction (condition dropout)


def combine(
    eps_prior: torch.Tensor,
    eps_conditional: Sequence[torch.Tensor],
    weights: Sequence[float | torch.Tensor],
    baselines: Sequence[torch.Tensor | None] | None = None,
) -> torch.Tensor:
    """eps_u + sum_i w_i (eps_i - b_i), where b_i is ``baselines[i]`` or, when that is None, ``eps_prior``."""
    if len(weights) != len(eps_conditional):
        raise ValueError(f"{len(eps_conditional)} predictions but {len(weights)} weights")
    if baselines is None:
        baselines = [None] * len(eps_conditional)
    elif len(baselines) != len(eps_conditional):
        raise ValueError(f"{len(eps_conditional)} predictions but {len(baselines)} baselines")
    out = eps_prior
    for eps_i, w_i, b_i in zip(eps_conditional, weights, baselines):
        out = out + w_i * (eps_i - (eps_prior if b_i is None else b_i))
    return out


def mix_priors(eps_priors: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """A mixture of unconditional priors, sum_j pi_j eps_j with sum_j pi_j = 1 (models trained on several datasets).

    A weighted sum of eps is a weighted sum of scores: the score of the geometric mixture prod_j p_j^pi_j
    (normalised), which favours images every prior finds likely, not the score of sum_j pi_j p_j.
    """
    if len(eps_priors) != len(weights) or not eps_priors:
        raise ValueError(f"{len(eps_priors)} priors but {len(weights)} weights")
    if abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"prior mixture weights must sum to 1, got {sum(weights):.6g}")
    return sum(w * e for w, e in zip(weights, eps_priors))


@dataclass(frozen=True)
class TimeWindow:
    """A modality speaks while t / T lies in [start, end] (1 is pure noise, 0 the clean image).

    ``TimeWindow(0.5, 1.0)`` lets a sketch set the layout early and leave the late, fine steps to others.
    """

    start: float = 0.0
    end: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.start <= self.end <= 1.0:
            raise ValueError(f"time window needs 0 <= start <= end <= 1, got [{self.start}, {self.end}]")

    def contains(self, t_fraction: float) -> bool:
        return self.start <= t_fraction <= self.end
