"""Experts whose noised scores are analytic: Gaussian mixtures with diagonal covariances, exact at every t.

For data x_0 ~ sum_k pi_k N(mu_k, diag(s_k^2)) the forward process gives p_t = sum_k pi_k N(a mu_k, diag(a^2 s_k^2
+ b^2)) with a = sqrt(abar_t), b = sqrt(1 - abar_t), so the optimal eps-prediction is eps = -b grad log p_t. Samples
are (B, D, 1, 1) "images" of D channels and one pixel, so they run through mcdm's predictors and loop unchanged.
Targets built from these (products, mixtures, tempered products) are evaluated exactly on a grid (1-D) or in
closed form (Gaussians).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mcdm.checkpoint import LoadedModel
from mcdm.modality import Denoiser
from mcdm.predictor import EpsModel
from mcdm.schedule import Prediction, alphas_cumprod


@dataclass(frozen=True)
class Mixture:
    """sum_k weights_k N(means_k, diag(stds_k^2)); means and stds are (K, D)."""

    weights: tuple[float, ...]
    means: tuple[tuple[float, ...], ...]
    stds: tuple[tuple[float, ...], ...]

    @classmethod
    def gaussian(cls, mean, std) -> "Mixture":
        mean, std = np.atleast_1d(mean).astype(float), np.atleast_1d(std).astype(float)
        return cls((1.0,), (tuple(mean),), (tuple(np.broadcast_to(std, mean.shape)),))

    @property
    def dim(self) -> int:
        return len(self.means[0])

    def _tensors(self, abar, like: torch.Tensor):
        mu = torch.tensor(self.means, dtype=torch.float64, device=like.device)
        s = torch.tensor(self.stds, dtype=torch.float64, device=like.device)
        a, b2 = abar**0.5, 1.0 - abar
        var = a**2 * s**2 + b2  # (K, D)
        return torch.tensor(self.weights, dtype=torch.float64, device=like.device).log(), a * mu, var

    def log_prob(self, x: torch.Tensor, abar: float = 1.0) -> torch.Tensor:
        """log p_t(x) for x (B, D), exactly (abar = 1: the data distribution)."""
        log_pi, mu, var = self._tensors(abar, x)
        x = x.double()[:, None, :]
        comp = -0.5 * (((x - mu) ** 2) / var + var.log() + math.log(2 * math.pi)).sum(-1)
        return torch.logsumexp(log_pi + comp, dim=1)

    def score(self, x: torch.Tensor, abar: float) -> torch.Tensor:
        log_pi, mu, var = self._tensors(abar, x)
        xd = x.double()[:, None, :]
        comp = -0.5 * (((xd - mu) ** 2) / var + var.log()).sum(-1)
        resp = torch.softmax(log_pi + comp, dim=1)  # (B, K)
        return (resp[:, :, None] * (-(xd - mu) / var)).sum(1)

    def eps(self, x: torch.Tensor, abar: float) -> torch.Tensor:
        return (-(1.0 - abar) ** 0.5 * self.score(x, abar)).to(x.dtype)


class AnalyticDenoiser(Denoiser):
    """An exact eps-predictor written as code: nothing to configure, build or save."""

    def config(self):
        return {}

    @classmethod
    def build(cls, **config):
        raise NotImplementedError

    def save_weights(self, folder):
        raise NotImplementedError

    @classmethod
    def load_weights(cls, folder, config):
        raise NotImplementedError


class MixtureOracle(AnalyticDenoiser):
    """The exact eps-predictor of ``conditional`` (condition 1) and of ``null`` (condition 0, its own prior)."""

    type_name = "mixture-oracle"

    def __init__(self, conditional: Mixture, schedule: dict, null: Mixture | None = None):
        super().__init__()
        self.conditional, self.null = conditional, null or conditional
        self.sample_size, self.image_channels = 1, conditional.dim
        self.register_buffer("abar", alphas_cumprod(schedule))

    def forward(self, x_t, t, cond):
        abar = float(self.abar[int(t)])
        flat = x_t.flatten(1)
        eps = self.conditional.eps(flat, abar)
        if cond is not None and self.null is not self.conditional:
            eps = torch.where(cond.reshape(-1, 1) > 0.5, eps, self.null.eps(flat, abar))
        return eps.view_as(x_t)


def oracle_model(name: str, mixture: Mixture, schedule: dict, null: Mixture | None = None) -> EpsModel:
    return EpsModel(LoadedModel(name=name, denoiser=MixtureOracle(mixture, schedule, null), modality=None,
                                prediction=Prediction.EPSILON, schedule_config=schedule))


def grid_target(log_density, lo: float = -6.0, hi: float = 6.0, points: int = 24001):
    """A 1-D unnormalised log-density on a fine grid -> (grid, normalised CDF)."""
    grid = torch.linspace(lo, hi, points, dtype=torch.float64)
    logp = log_density(grid[:, None])
    p = (logp - logp.max()).exp()
    cdf = torch.cumsum((p[1:] + p[:-1]) / 2, 0)
    cdf = torch.cat([cdf.new_zeros(1), cdf]) / cdf[-1]
    return grid, cdf


def ks_distance(samples: torch.Tensor, target) -> float:
    """Kolmogorov-Smirnov statistic of 1-D samples against a ``grid_target``."""
    grid, cdf = target
    x = samples.flatten().double().sort().values
    n = x.numel()
    f = torch.from_numpy(np.interp(x.numpy(), grid.numpy(), cdf.numpy()))
    upper = torch.arange(1, n + 1, dtype=torch.float64) / n
    return float(torch.maximum(upper - f, f - (upper - 1.0 / n)).abs().max())


def gaussian_w2(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> float:
    """W2 between the samples' Gaussian fit and N(mean, cov) (Bures formula; both covariances diagonal here)."""
    x = samples.flatten(1).double()
    m, c = x.mean(0), torch.cov(x.T)
    root = torch.linalg.eigh(cov)
    sqrt_cov = root.eigenvectors @ torch.diag(root.eigenvalues.sqrt()) @ root.eigenvectors.T
    inner = torch.linalg.eigvalsh(sqrt_cov @ c @ sqrt_cov).clamp(min=0).sqrt().sum()
    return float(((m - mean) ** 2).sum() + torch.trace(c) + torch.trace(cov) - 2 * inner) ** 0.5
