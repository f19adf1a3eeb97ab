"""Composition methods beyond the plain sum, as one frozen setting, and the rules on what they combine with.

The plain sum ``eps_u + sum_i w_i (eps_i - b_i)`` is not the score of the product of the noised marginals, so
reverse diffusion with it does not sample the product (docs/method.md, "Beyond the sum"). A :class:`MethodConfig`
chooses a repair; every choice is built only on predictions the step already made:

- ``particles: K`` (> 1): K particles per image carry Feynman-Kac log-weights and are resampled (Skreta et al.,
  ICML 2025) while t/T lies in ``[particles_start, particles_end]`` and the effective sample size falls below
  ``ess_threshold * K``; the target is the geometric mixture the weights define;
- ``combiner: balanced``: per-sample, per-step weights that keep every modality's log-density ratio equal
  (SuperDiff's AND, Skreta et al., ICLR 2025), from log-densities tracked along the trajectory;
- ``combiner: or``: the exact score of the mixture sum_i pi_i p_i (pi_i proportional to w_i), the posterior weights
  ``softmax(temperature * log p_i + log pi_i)`` read from the tracked log-densities;
- ``prior_mixing: or``: the same posterior mixture for a ``prior_mixture`` instead of the geometric one;
- ``corrector: mala``: the corrector steps are Metropolis-adjusted (the acceptance integrates the composed score
  along the move), instead of unadjusted Langevin.

What the mathematics does not allow is refused by :func:`check_method` with a one-line :class:`MethodError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

from mcdm.errors import MethodError
from mcdm.sde import StepVariance


class Combiner(str, Enum):
    SUM = "sum"  # eps_u + sum_i w_i (eps_i - b_i): MCDM / Composable Diffusion (the default)
    BALANCED = "balanced"  # SuperDiff AND: weights that keep the modalities' log-densities equal
    OR = "or"  # the exact mixture score, posterior weights from the tracked log-densities


class PriorMixing(str, Enum):
    GEOMETRIC = "geometric"  # eps_u = sum_j pi_j eps_j: the score of prod_j p_j^pi_j (the default)
    OR = "or"  # the score of sum_j pi_j p_j, posterior weights from the tracked log-densities


class Corrector(str, Enum):
    ULA = "ula"  # unadjusted Langevin (the default)
    MALA = "mala"  # Metropolis-adjusted Langevin


@dataclass(frozen=True)
class MethodConfig:
    """How the composition is sampled beyond the plain sum; the defaults are the plain sum itself."""

    combiner: Combiner = Combiner.SUM
    prior_mixing: PriorMixing = PriorMixing.GEOMETRIC
    temperature: float = 1.0  # T of the OR posterior softmax(T log p_i + log pi_i); 1 is the exact mixture
    particles: int = 1  # particles per image; > 1 turns on Feynman-Kac resampling
    particles_start: float = 0.0  # resampling's active interval, as fractions t/T
    particles_end: float = 1.0
    ess_threshold: float = 1.0  # resample when ESS < threshold * K (1: at every active step)
    weight_clamp: float = 1.0  # each step's centred log-weight increment is clamped to [-clamp, clamp]
    corrector: Corrector = Corrector.ULA
    # the noise of the stochastic step the particles, balanced AND and OR run on (mcdm.sde.Step)
    sde_variance: StepVariance = StepVariance.POSTERIOR

    def __post_init__(self):
        if self.particles < 1:
            raise MethodError(f"particles must be at least 1, got {self.particles}")
        if not 0.0 <= self.particles_start <= self.particles_end <= 1.0:
            raise MethodError(f"the particles' active interval needs 0 <= start <= end <= 1, "
                              f"got [{self.particles_start}, {self.particles_end}]")
        if not 0.0 < self.ess_threshold <= 1.0:
            raise MethodError(f"ess_threshold must lie in (0, 1], got {self.ess_threshold}")
        if not self.weight_clamp > 0:  # NaN too; inf is no clamp
            raise MethodError(f"weight_clamp must be > 0, got {self.weight_clamp}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise MethodError(f"temperature must be a finite number > 0, got {self.temperature}")

    @property
    def tracks_densities(self) -> bool:
        """Whether the loop must carry each model's log-density (the Itô estimator)."""
        return self.combiner is not Combiner.SUM or self.prior_mixing is PriorMixing.OR

    @property
    def label(self) -> str:
        """The setting that makes this method what it is, for messages."""
        if self.combiner is not Combiner.SUM:
            return f"combiner {self.combiner.value!r}"
        if self.prior_mixing is PriorMixing.OR:
            return "prior_mixing 'or'"
        if self.particles > 1:
            return "particles"
        return f"corrector {self.corrector.value!r}"

    @property
    def needs_sde(self) -> bool:
        """Whether the method needs the reverse SDE's ancestral step (``mcdm.sde.Step``, on the ddpm sampler)."""
        return self.tracks_densities or self.particles > 1


@dataclass
class Trace:
    """What a request did, filled in by the loop: the particles' ESS fraction at each active step (before any
    resampling), how often they were resampled, and each corrector chain's acceptance rate (MALA); and by the
    Composer: the images every network evaluation took (a batch of B counts B)."""

    ess: list[float] = field(default_factory=list)
    resamplings: int = 0
    acceptance: list[float] = field(default_factory=list)
    network_images: int = 0


@dataclass(frozen=True)
class TermFacts:
    """What :func:`check_method` needs of one term: its name, weights (every value the weight takes, per sample
    and pixel, reduced to a range), whether its weight is a map that varies over the image, and its window."""

    name: str
    weight_min: float
    weight_max: float
    varies_over_pixels: bool
    window: tuple[float, float]


def check_method(method: MethodConfig, terms: Sequence[TermFacts], *, corrector_steps: int,
                 prior_mixture: bool) -> None:
    """Raise MethodError (one line, naming the setting) where the mathematics does not allow the combination."""
    fixed_field = method.needs_sde or method.corrector is Corrector.MALA
    for term in terms:
        if fixed_field and term.varies_over_pixels:
            raise MethodError(f"{method.label} needs scalar weights, but {term.name!r} has a per-pixel weight "
                              "map: sum_i W_i grad log p_i is then no density's score (set its weight_map: false)")
    if method.tracks_densities:
        if method.particles > 1:
            raise MethodError(f"particles reweight towards the fixed geometric mixture of the sum combiner; "
                              f"{method.label} changes the target every step")
        if corrector_steps:
            raise MethodError(f"corrector steps move x_t at a fixed t, which the log-densities {method.label} "
                              "tracks along the sampler's trajectory cannot follow")
        for term in terms:
            if term.window != (0.0, 1.0):
                raise MethodError(f"{method.label} tracks every model's log-density from t = T, but {term.name!r} "
                                  f"only speaks in [{term.window[0]}, {term.window[1]}]")
    if method.combiner is not Combiner.SUM:
        for term in terms:
            if term.weight_min <= 0:
                raise MethodError(f"combiner {method.combiner.value!r} needs weights > 0 (a NOT has no density to "
                                  f"balance or mix), but {term.name!r} has weight {term.weight_min:g}")
    if method.prior_mixing is PriorMixing.OR and not prior_mixture:
        raise MethodError("prior_mixing 'or' mixes the priors of a prior_mixture, but this composition has none")
    if method.particles > 1:
        interval = (method.particles_start, method.particles_end)
        for term in terms:
            if not term.window[0] <= interval[0] <= interval[1] <= term.window[1]:
                raise MethodError(
                    f"the particles' active interval [{interval[0]}, {interval[1]}] must lie inside every window, "
                    f"but {term.name!r} speaks in [{term.window[0]}, {term.window[1]}]: at a window's edge the target "
                    "jumps by w_i log(p_i / b_i), which the scores alone do not give")

