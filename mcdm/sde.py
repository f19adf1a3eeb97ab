"""The reverse SDE of the forward process, one step at a time, and the Itô log-density estimator along it.

The forward process ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` is the VP SDE
``dx = -(beta/2) x dt + sqrt(beta) dW``. Between two sampler timesteps t > t' write ``alpha = abar_t / abar_t'``
and ``beta = 1 - alpha`` (the forward step's noise variance). :class:`Step` is DDPM's ancestral step without x_0
clipping, with one of two noise variances (:class:`StepVariance`): the posterior's ``beta (1 - abar_t') / (1 - abar_t)``
(diffusers' "fixed_small"; the exponential integrator of the reverse SDE, SDE-DPM-Solver-1) or the forward step's
``beta`` ("fixed_large"; Euler-Maruyama). Both discretise the same reverse SDE and agree as the steps shrink; on a
coarse grid the forward variance leaves noise in the last steps that the posterior's does not (docs/method.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Sequence

import torch


class StepVariance(str, Enum):
    POSTERIOR = "posterior"  # beta (1 - abar_t') / (1 - abar_t): q(x_t' | x_t, x_0)'s, DDPM's "fixed_small"
    FORWARD = "forward"  # beta: Euler-Maruyama, DDPM's "fixed_large"


@dataclass(frozen=True)
class Step:
    """One reverse step from t (``abar``) to t' (``abar_prev``) with the standard normal ``noise`` it will add."""

    x: torch.Tensor
    abar: float
    abar_prev: float
    noise: torch.Tensor | None  # None on the last step, which lands on the posterior mean
    variance: StepVariance = StepVariance.POSTERIOR

    @property
    def alpha(self) -> float:
        return self.abar / self.abar_prev

    @property
    def beta(self) -> float:  # g^2 dtau of the step
        return 1.0 - self.alpha

    @property
    def sigma(self) -> float:  # sqrt(1 - abar_t): score = -eps / sigma
        return (1.0 - self.abar) ** 0.5

    @property
    def gain(self) -> float:
        """-d x' / d eps: how the next state moves with the composed prediction."""
        return self.beta / (self.sigma * self.alpha**0.5)

    @property
    def noise_variance(self) -> float:
        if self.variance is StepVariance.FORWARD:
            return self.beta
        return self.beta * (1.0 - self.abar_prev) / (1.0 - self.abar)

    def move(self, eps: torch.Tensor) -> torch.Tensor:
        """x' = (x - beta / sigma * eps) / sqrt(alpha) + sqrt(noise_variance) z."""
        mean = (self.x - (self.beta / self.sigma) * eps) / self.alpha**0.5
        return mean if self.noise is None else mean + self.noise_variance**0.5 * self.noise


def ito_increment(step: Step, x_next: torch.Tensor, predictions: Sequence[torch.Tensor]) -> torch.Tensor:
    """d log p_j(x_t) over the step for every model j (SuperDiff's Itô estimator), (B, M), in float64.

    With s_j = -eps_j / sigma at the step's start, the forward drift f = -(beta/2) x and g^2 dtau = beta,

        d log p_j = <x' - x, s_j> + <f dtau, s_j> - (beta/2) ||s_j||^2

    needs only inner products of predictions already computed: the divergence of s_j that the density's
    PDE holds cancels against the Itô correction of the noise (docs/method.md). That cancellation is exact for
    the forward variance; the posterior's, smaller by O(beta^2 / (1 - abar_t)), leaves a per-step error of
    ``(noise_variance - beta) / 2 * div s_j`` that vanishes as the steps shrink. The model-independent term
    -div f dtau is left out: every comparison the methods make is between models.
    """
    dims = tuple(range(1, step.x.ndim))
    displacement = (x_next - step.x) - 0.5 * step.beta * step.x
    columns = []
    for eps in predictions:
        score = -eps / step.sigma
        columns.append(((displacement * score).sum(dims) - 0.5 * step.beta * score.pow(2).sum(dims)).double())
    return torch.stack(columns, dim=1)
