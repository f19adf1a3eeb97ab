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


@dataclass(frozen=True)
class Parts:
    """Every prediction one composed step made, and the sum combiner's weights: what the methods build on.

    ``priors`` are eps_u's components (one unless a prior mixture, with ``prior_weights`` pi_j); for each
    speaking term, ``conditional[i]``, its ``baselines[i]`` (model i's own null prediction, or None for eps_u)
    and its ``weights[i]`` (a scalar or a map constant over the image: see ``mcdm.methods.check_method``).
    """

    priors: tuple[torch.Tensor, ...]
    prior_weights: tuple[float, ...]
    conditional: tuple[torch.Tensor, ...]
    baselines: tuple[torch.Tensor | None, ...]
    weights: tuple[float | torch.Tensor, ...]

    def predictions(self) -> tuple[torch.Tensor, ...]:
        """Every distinct model output: priors, then the conditionals, then the own baselines given."""
        return (*self.priors, *self.conditional, *(b for b in self.baselines if b is not None))

    def sample_weights(self) -> torch.Tensor:
        """The terms' weights as one (B, N) tensor of per-sample scalars."""
        import torch  # lazily, as the module's (see the import at the top)

        batch = self.priors[0].shape[0]
        ref = self.priors[0]
        columns = [torch.as_tensor(w, dtype=torch.float32, device=ref.device).reshape(-1)[:1].expand(batch)
                   if not torch.is_tensor(w) or w.numel() == 1
                   else w.reshape(w.shape[0], -1)[:, 0].to(ref.device, torch.float32).expand(batch)
                   for w in self.weights]
        return torch.stack(columns, dim=1) if columns else ref.new_zeros(batch, 0)


def sum_coefficients(parts: Parts) -> list[torch.Tensor]:
    """The sum combiner as sum_j c_j eps_j over ``parts.predictions()``, each c_j a (B,) tensor; sum_j c_j = 1.

    eps_u's coefficient is 1 minus the shared-baseline weights, split over the priors by pi_j; a term has w_i,
    its own baseline -w_i. So the composed field is the score of prod_j p_j^c_j.
    """
    import torch

    w = parts.sample_weights()
    shared = torch.tensor([b is None for b in parts.baselines], device=w.device)
    prior_share = 1.0 - (w * shared).sum(dim=1)
    coefficients = [pi * prior_share for pi in parts.prior_weights]
    coefficients += list(w.unbind(dim=1))
    coefficients += [-w[:, i] for i, b in enumerate(parts.baselines) if b is not None]
    return coefficients


def posterior_weights(logdensities: torch.Tensor, proportions: Sequence[float] | torch.Tensor,
                      temperature: float = 1.0) -> torch.Tensor:
    """softmax(T log p_j + log pi_j) over j, per sample: (B, M) log-densities, (M,) or (B, M) proportions -> (B, M).

    With T = 1 these are the posterior probabilities of the components of sum_j pi_j p_j at x, so
    sum_j rho_j grad log p_j is the mixture's exact score.
    """
    import torch

    pi = torch.as_tensor(proportions, dtype=logdensities.dtype, device=logdensities.device)
    return torch.softmax(temperature * logdensities + (pi / pi.sum(dim=-1, keepdim=True)).log(), dim=1)


def mix(predictions: Sequence[torch.Tensor], rho: torch.Tensor) -> torch.Tensor:
    """sum_j rho_j eps_j with per-sample weights rho (B, M)."""
    view = (-1,) + (1,) * (predictions[0].ndim - 1)
    return sum(rho[:, j].reshape(view).to(e.dtype) * e for j, e in enumerate(predictions))


def balanced_weights(predicted: torch.Tensor, gram: torch.Tensor, total: torch.Tensor,
                     fallback: torch.Tensor, ridge: float = 1e-3) -> torch.Tensor:
    """SuperDiff's AND weights kappa (B, N): after the step every modality's log-density ratio r_i is equal.

    ``predicted`` (B, N) is r_i after the step with every kappa at 0 and ``gram`` (B, N, N) how kappa_j moves
    r_i, so r_i' = predicted_i + sum_j gram_ij kappa_j. Solve the (N+1)x(N+1) system in (kappa, lambda)

        sum_j gram_ij kappa_j - lambda = -predicted_i   (i = 1..N),     sum_j kappa_j = total

    with a ridge of ``ridge`` times gram's mean diagonal, which bounds kappa where two modalities' predictions
    coincide (no kappa can then separate their log-densities). Weights are kept >= 0 (a conjunction) and
    renormalised to ``total``; where gram vanishes (every prediction equal, early steps) or the solve fails,
    ``fallback`` (the composition's weights) is used.
    """
    import torch

    batch, n = predicted.shape
    if n < 2:
        return fallback
    g = gram.double()
    scale = torch.diagonal(g, dim1=1, dim2=2).mean(dim=1)  # (B,)
    system = g.new_zeros(batch, n + 1, n + 1)
    system[:, :n, :n] = g + (ridge * scale)[:, None, None] * torch.eye(n, dtype=g.dtype, device=g.device)
    system[:, :n, n] = -1.0
    system[:, n, :n] = 1.0
    rhs = torch.cat([-predicted.double(), total.double()[:, None]], dim=1)
    solved = torch.linalg.solve_ex(system, rhs)
    kappa = solved.result[:, :n].clamp(min=0.0)
    kappa = kappa * (total.double() / kappa.sum(dim=1).clamp(min=1e-12))[:, None]
    usable = (scale > 1e-12) & (solved.info == 0) & torch.isfinite(kappa).all(dim=1)
    return torch.where(usable[:, None], kappa, fallback.double()).to(fallback.dtype)
