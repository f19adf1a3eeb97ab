"""Predictors: callables ``(x_t, t) -> eps``. A model becomes one through EpsModel, a composition through ComposedEps.

The sampler only ever sees a predictor, so it never knows how many models spoke (k-diffusion style).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mcdm.checkpoint import LoadedModel
from mcdm.combine import Baseline, Parts, TimeWindow, combine, mix_priors
from mcdm.errors import ConfigError
from mcdm.schedule import Prediction, alphas_cumprod, to_eps


class EpsModel:
    """A loaded model seen as an eps-predictor on its training schedule (v and x0 models converted here)."""

    def __init__(self, model: LoadedModel, device: torch.device | str = "cpu"):
        self.model = model
        self.name = model.name
        self.denoiser = model.denoiser
        self.prediction = model.prediction
        self.num_train_timesteps = int(model.schedule_config["num_train_timesteps"])
        self.alphas_cumprod = alphas_cumprod(model.schedule_config).to(device=device, dtype=torch.float32)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self.from_output(self.denoiser(x_t, t, cond), x_t, t)

    def from_output(self, out: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps from the network's output for x_t at t (a batched call's share of it: mcdm.grouped)."""
        out = out.float()  # combine and step in fp32 even when the network ran in bf16/fp16
        if self.prediction is Prediction.EPSILON:
            return out
        return to_eps(out, x_t, self._abar(t, x_t), self.prediction)

    def _abar(self, t: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        # Samplers such as Euler pass fractional timesteps: interpolate abar linearly between integers.
        t = torch.as_tensor(t, dtype=torch.float32, device=self.alphas_cumprod.device).clamp(0, self.num_train_timesteps - 1)
        lo = t.floor().long()
        hi = (lo + 1).clamp(max=self.num_train_timesteps - 1)
        frac = t - lo
        abar = self.alphas_cumprod[lo] * (1 - frac) + self.alphas_cumprod[hi] * frac
        return abar.reshape(-1, *([1] * (x_t.ndim - 1)))


@dataclass
class Term:
    """One modality's contribution: its model, condition batch, weight (scalar or map), window and baseline."""

    name: str
    model: EpsModel
    condition: torch.Tensor
    null_condition: torch.Tensor
    weight: float | torch.Tensor = 1.0
    window: TimeWindow = TimeWindow()
    baseline: Baseline = Baseline.SHARED


PRIOR = "prior"  # the shared prior's name in a prior mixture; every other name is a term's own null prediction


class ComposedEps:
    """The composed predictor: prior + terms through :func:`mcdm.combine.combine`. It is itself a predictor.

    ``prior_mixture`` ({name: pi}, the pi summing to 1) replaces eps_u by a mixture of priors: ``"prior"`` is
    the shared prior, a term's name its model's own null-condition prediction (the prior of the dataset it
    was trained on). The mixture is eps_u everywhere, in the shared baselines too. Mixing eps mixes scores,
    so this is the geometric mixture prod_j p_j^pi_j (where the priors overlap), not sum_j pi_j p_j.
    """

    def __init__(self, prior: EpsModel, terms: list[Term], batch_size: int = 1,
                 prior_mixture: dict[str, float] | None = None):
        self.prior = prior
        self.terms = terms
        self.batch_size = batch_size  # images per request: the sampler's batch
        self.num_train_timesteps = prior.num_train_timesteps
        self.prior_mixture = dict(prior_mixture or {})
        # own-baseline terms run condition and null condition as one batch: concatenated once, so every step
        # passes the same tensor (a denoiser may cache what it derives from its condition, e.g. text encodings)
        self._paired = {term.name: torch.cat([term.condition, term.null_condition])
                        for term in terms if term.baseline == Baseline.OWN}
        missing = [name for name in self.prior_mixture if name != PRIOR and name not in {t.name for t in terms}]
        if missing:
            raise ConfigError(f"the prior mixture uses the own null predictions of {missing}, but this request "
                              "gives them no condition: give one, or leave them out of prior_mixture")

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        parts = self.parts(x_t, t)
        # without a mixture eps_u is the prior's output itself (1.0 * e + 0 would turn its -0.0 into 0.0)
        eps_u = mix_priors(parts.priors, parts.prior_weights) if self.prior_mixture else parts.priors[0]
        return combine(eps_u, parts.conditional, parts.weights, parts.baselines)

    def parts(self, x_t: torch.Tensor, t: torch.Tensor) -> Parts:
        """Every prediction of one composed step (one network call per model, as ``__call__``), unmixed."""
        # t comes from scheduler.timesteps, kept on the CPU: reading it never waits for the device.
        t_fraction = float(t) / self.num_train_timesteps
        priors, nulls = self._priors(x_t, t)
        predictions, weights, baselines = [], [], []
        for term in self.terms:
            if not term.window.contains(t_fraction):
                continue  # weight 0 at this step: skip the network call entirely
            if term.baseline == Baseline.OWN and term.name in nulls:
                eps_i, own = term.model(x_t, t, term.condition), nulls[term.name]
            elif term.baseline == Baseline.OWN:
                # conditional and null-condition predictions in one batch: one forward pass
                both = term.model(torch.cat([x_t, x_t]), t, self._paired[term.name])
                eps_i, own = both.chunk(2)
            else:
                eps_i, own = term.model(x_t, t, term.condition), None
            predictions.append(eps_i)
            weights.append(term.weight)
            baselines.append(own)
        mixture = self.prior_mixture or {PRIOR: 1.0}
        return Parts(priors=tuple(priors), prior_weights=tuple(mixture.values()), conditional=tuple(predictions),
                     baselines=tuple(baselines), weights=tuple(weights))

    def _priors(self, x_t: torch.Tensor, t: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """eps_u's components (the prior, or the mixture's priors) and the terms' null predictions among them."""
        if not self.prior_mixture:
            return [self.prior(x_t, t, None)], {}
        terms = {term.name: term for term in self.terms}
        parts = {name: self.prior(x_t, t, None) if name == PRIOR
                 else terms[name].model(x_t, t, terms[name].null_condition) for name in self.prior_mixture}
        return list(parts.values()), {name: eps for name, eps in parts.items() if name != PRIOR}
