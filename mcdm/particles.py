"""Feynman-Kac particles: the weight increment of a composed step, effective sample size, systematic resampling.

For a composed field sum_j c_j grad log p_j (sum_j c_j = 1: the score of the geometric mixture prod_j p_j^c_j),
reverse diffusion with it samples that mixture once every particle carries the log-weight increment (derived in
docs/method.md from the Feynman-Kac PDE)

    dlogw = (g^2 dtau / 2) (||sum_j c_j s_j||^2 - sum_j c_j ||s_j||^2)
          = -(beta / (2 sigma^2)) sum_j c_j ||eps_j - eps*||^2

the second form (shift-invariant, so free of the cancellation between large norms) in eps, s_j = -eps_j / sigma.
For eps_u + sum_i w_i (eps_i - eps_u) it is (g^2 dtau / 2)(||sum_i w_i d_i||^2 - sum_i w_i ||d_i||^2),
d_i = s_i - s_u.
"""

from __future__ import annotations

from typing import Sequence

import torch


def fk_increment(eps_star: torch.Tensor, predictions: Sequence[torch.Tensor], coefficients: Sequence[torch.Tensor],
                 beta: float, sigma: float) -> torch.Tensor:
    """-(beta / 2 sigma^2) sum_j c_j ||eps_j - eps*||^2 per sample, (B,), in float64."""
    dims = tuple(range(1, eps_star.ndim))
    spread = sum(c.double() * (e - eps_star).pow(2).sum(dims).double() for e, c in zip(predictions, coefficients))
    return -0.5 * beta / sigma**2 * spread


def centre_and_clamp(increment: torch.Tensor, clamp: float) -> torch.Tensor:
    """Each group's increments (G, K) less their mean, clamped to [-clamp, clamp] as in the official FKC code:
    resampling sees only differences, and the clamp keeps one step from collapsing the population."""
    return (increment - increment.mean(dim=1, keepdim=True)).clamp(-clamp, clamp)


def ess_fraction(logw: torch.Tensor) -> torch.Tensor:
    """Effective sample size over K, per group: logw (G, K) -> (G,) in (1/K, 1]."""
    w = torch.softmax(logw, dim=1)
    return 1.0 / (w.pow(2).sum(dim=1) * logw.shape[1])


def systematic_resample(logw: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Indices into the flattened (G * K) population, K drawn within each group by systematic resampling.

    One uniform per group, shifted by k / K; normalised weights clipped below at 1e-6 as in the official FKC code.
    """
    groups, k = logw.shape
    u = torch.rand(groups, 1, generator=generator, device=generator.device, dtype=torch.float64).to(logw.device)
    positions = (u + torch.arange(k, device=logw.device, dtype=torch.float64) / k) % 1.0
    weights = torch.softmax(logw.double(), dim=1).clamp(min=1e-6)
    bins = torch.cumsum(weights / weights.sum(dim=1, keepdim=True), dim=1)
    chosen = torch.searchsorted(bins, positions.sort(dim=1).values, right=True).clamp(max=k - 1)
    return (chosen + k * torch.arange(groups, device=logw.device)[:, None]).reshape(-1)


def pick_one(logw: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per group into the flattened population, drawn in proportion to the weights: (G,)."""
    groups, k = logw.shape
    u = torch.rand(groups, 1, generator=generator, device=generator.device, dtype=torch.float64).to(logw.device)
    bins = torch.cumsum(torch.softmax(logw.double(), dim=1), dim=1)
    chosen = torch.searchsorted(bins, u * bins[:, -1:], right=True).clamp(max=k - 1)[:, 0]
    return chosen + k * torch.arange(groups, device=logw.device)
