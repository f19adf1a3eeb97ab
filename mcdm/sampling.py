"""The sampling loop: one diffusers scheduler, one predictor, one ``scheduler.step`` per timestep.

Composition methods that need the stochastic sampler (particles, balanced AND, OR: ``mcdm.methods``) run in
:func:`_sample_sde`, DDPM's ancestral step written out (``mcdm.sde.Step``) with the state those methods carry:
particle log-weights and each model's tracked log-density. The plain sum never enters it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from mcdm.combine import Parts, balanced_weights, combine, mix, mix_priors, posterior_weights, sum_coefficients
from mcdm.errors import ConfigError, MethodError
from mcdm.methods import Combiner, Corrector, MethodConfig, PriorMixing, Trace
from mcdm.particles import centre_and_clamp, ess_fraction, fk_increment, pick_one, systematic_resample
from mcdm.sde import Step, ito_increment

Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, torch.Tensor, torch.Tensor], None]


@torch.inference_mode()
def sample(
    predictor: Predictor,
    scheduler,
    *,
    shape: tuple[int, ...],
    steps: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    progress: bool = True,
    callback: StepCallback | None = None,
    corrector_steps: int = 0,
    corrector_size: float = 0.1,
    method: MethodConfig = MethodConfig(),
    trace: Trace | None = None,
) -> torch.Tensor:
    """Draw x_T ~ N(0, I) from ``generator`` and run the reverse process; returns x_0 in the model's range.

    The initial noise is drawn on the generator's device and moved, so a seed gives the same images
    whatever device runs the networks. ``callback(i, t, x)`` sees every intermediate sample.
    ``corrector_steps`` Langevin steps (:func:`langevin_correct`, or :func:`mala_correct` with
    ``method.corrector`` MALA) follow every step but the last. A ``method`` that needs the stochastic sampler
    runs in :func:`_sample_sde`; ``trace`` records what the method did.
    """
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}")
    if corrector_steps < 0 or corrector_size <= 0:
        raise ConfigError(f"corrector_steps must be >= 0 and corrector_size > 0, got {corrector_steps}, {corrector_size}")
    if corrector_steps and float(scheduler.init_noise_sigma) != 1.0:
        raise ConfigError(f"Langevin corrector steps need a sampler whose state is x_t itself (ddpm, ddim, dpm++); "
                         f"{type(scheduler).__name__} keeps a rescaled state")
    loop = _Loop(steps, generator, device, progress, callback, corrector_steps, corrector_size, method, trace)
    if method.needs_sde:
        check_sde_sampler(scheduler, method)
        return _sample_sde(predictor, scheduler, shape, loop)
    return _sample_ode(predictor, scheduler, shape, loop)


@dataclass(frozen=True)
class _Loop:
    """What both loops share: the timesteps they walk, the randomness, the corrector steps and the callback."""

    steps: int
    generator: torch.Generator
    device: torch.device | str
    progress: bool
    callback: StepCallback | None
    corrector_steps: int
    corrector_size: float
    method: MethodConfig
    trace: Trace | None

    def timesteps(self, scheduler):
        """``(i, t)`` over the scheduler's timesteps for ``steps`` steps, with the progress bar."""
        scheduler.set_timesteps(self.steps)  # timesteps stay on the CPU: no device sync when the loop reads them
        return enumerate(tqdm(scheduler.timesteps, desc="sampling", disable=not self.progress, leave=False))

    def noise(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Gaussian noise drawn on the generator's device (the same for a seed on any device), kept there."""
        return torch.randn(shape, generator=self.generator, device=self.generator.device, dtype=torch.float32)

    def correct(self, predictor, scheduler, x: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The corrector steps after step ``i`` (none after the last), at the noise level that step landed on:
        x and, for MALA, eps*(x)."""
        if not self.corrector_steps or i + 1 == len(scheduler.timesteps):
            return x, None
        t = scheduler.timesteps[i + 1]
        abar = float(scheduler.alphas_cumprod[int(t)])
        run = dict(steps=self.corrector_steps, size=self.corrector_size, generator=self.generator)
        if self.method.corrector is Corrector.MALA:
            return mala_correct(predictor, x, t, abar, trace=self.trace, **run)
        return langevin_correct(predictor, x, t, abar, **run), None

    def after(self, i: int, t: torch.Tensor, x: torch.Tensor) -> None:
        if self.callback is not None:
            self.callback(i, t, x)


def _sample_ode(predictor: Predictor, scheduler, shape: tuple[int, ...], loop: _Loop) -> torch.Tensor:
    """The scheduler's own step on the composed prediction, one per timestep."""
    timesteps = loop.timesteps(scheduler)
    x = (loop.noise(shape) * scheduler.init_noise_sigma).to(loop.device)  # float32 (see Composer's precision)
    eps_next = None  # MALA ends on the composed prediction at the state the next step starts from
    for i, t in timesteps:
        eps = predictor(scheduler.scale_model_input(x, t), t) if eps_next is None else eps_next
        x = scheduler.step(eps, t, x, generator=loop.generator).prev_sample
        x, eps_next = loop.correct(predictor, scheduler, x, i)
        loop.after(i, t, x)
    return x


def check_sde_sampler(scheduler, method: MethodConfig) -> None:
    """The stochastic methods are derived for the reverse SDE; of the samplers, only DDPM's ancestral step is it."""
    from diffusers import DDPMScheduler

    if not isinstance(scheduler, DDPMScheduler):
        raise MethodError(f"{method.label} needs the ddpm sampler (the reverse SDE's ancestral step); "
                          f"{type(scheduler).__name__} integrates the probability-flow ODE")


def _sample_sde(predictor, scheduler, shape: tuple[int, ...], loop: _Loop) -> torch.Tensor:
    """The reverse SDE on DDPM's timesteps with ``loop.method``: ``shape[0]`` images, each from ``method.particles``.

    ``predictor`` must give :meth:`parts` (``mcdm.predictor.ComposedEps``), for ``shape[0] * particles`` samples
    (each image's conditions repeated for its particles). Every step makes the same network calls as the plain
    sum: the log-weights and log-densities are inner products of the predictions it already has.
    """
    method, trace, generator = loop.method, loop.trace, loop.generator
    k, images = method.particles, shape[0]
    steps = loop.timesteps(scheduler)
    timesteps = scheduler.timesteps
    total = (images * k, *shape[1:])
    x = loop.noise(total).to(loop.device)
    logw = torch.zeros(images, k, dtype=torch.float64, device=x.device)
    logdensity = None  # (B, M) for the models of parts.predictions(), from 0 at t = T where all agree
    for i, t in steps:
        last = i + 1 == len(timesteps)
        prev = int(scheduler.previous_timestep(t))
        abar = float(scheduler.alphas_cumprod[int(t)])
        abar_prev = float(scheduler.alphas_cumprod[prev]) if prev >= 0 else 1.0
        noise = None if last else loop.noise(total).to(x.device)
        parts = predictor.parts(x, t)
        step = Step(x, abar, abar_prev, noise, method.sde_variance)
        if logdensity is None and method.tracks_densities:
            logdensity = x.new_zeros(x.shape[0], len(parts.predictions()), dtype=torch.float64)
        eps = _method_eps(parts, method, logdensity, step)
        active = k > 1 and not last and method.particles_start <= float(t) / scheduler.config.num_train_timesteps \
            <= method.particles_end
        if active:
            increment = fk_increment(eps, parts.predictions(), sum_coefficients(parts), step.beta, step.sigma)
            logw = logw + centre_and_clamp(increment.view(images, k), method.weight_clamp)
        x_next = step.move(eps)
        if logdensity is not None:
            logdensity = logdensity + ito_increment(step, x_next, parts.predictions())
        x = x_next
        if active:
            ess = ess_fraction(logw)
            if trace is not None:
                trace.ess.append(float(ess.mean()))
            low = ess < method.ess_threshold  # the images whose particles are resampled
            if bool(low.any()):  # one host sync per step, only with particles
                chosen = systematic_resample(logw, generator)
                x = torch.where(low.repeat_interleave(k).view(-1, *[1] * (x.ndim - 1)), x[chosen], x)
                logw = torch.where(low[:, None], torch.zeros_like(logw), logw)
                if trace is not None:
                    trace.resamplings += 1
        x, _ = loop.correct(predictor, scheduler, x, i)  # MALA's last prediction unused: the step needs all parts
        loop.after(i, t, x)
    if k > 1:
        x = x[pick_one(logw, generator)]
    return x


def _method_eps(parts: Parts, method: MethodConfig, logdensity: torch.Tensor | None, step: Step) -> torch.Tensor:
    """The composed prediction of one step under ``method``, from the step's parts and tracked log-densities."""
    n_priors, n_terms = len(parts.priors), len(parts.conditional)
    if method.prior_mixing is PriorMixing.OR:
        eps_u = mix(parts.priors, posterior_weights(logdensity[:, :n_priors], parts.prior_weights))
    else:
        eps_u = mix_priors(parts.priors, parts.prior_weights)
    if method.combiner is Combiner.OR and n_terms:
        rho = posterior_weights(logdensity[:, n_priors:n_priors + n_terms], parts.sample_weights(),  # > 0
                                method.temperature)
        return mix(parts.conditional, rho)
    if method.combiner is Combiner.BALANCED and n_terms:
        kappa = _balanced(parts, method, eps_u, logdensity, step)
        view = (-1,) + (1,) * (eps_u.ndim - 1)
        return combine(eps_u, parts.conditional, [kappa[:, i].reshape(view).float() for i in range(n_terms)],
                       parts.baselines)
    return combine(eps_u, parts.conditional, parts.weights, parts.baselines)


def _ratios(parts: Parts, method: MethodConfig, logdensity: torch.Tensor) -> torch.Tensor:
    """Each modality's log-density ratio r_i = log p_i - log b_i (b_i: its own null, or eps_u's density), (B, N)."""
    n_priors, n_terms = len(parts.priors), len(parts.conditional)
    log_pi = logdensity.new_tensor(parts.prior_weights).log()
    priors = logdensity[:, :n_priors]
    if method.prior_mixing is PriorMixing.OR:
        prior = torch.logsumexp(priors + log_pi, dim=1)
    else:
        prior = (priors * log_pi.exp()).sum(dim=1)
    own = iter(range(n_priors + n_terms, logdensity.shape[1]))
    base = [prior if b is None else logdensity[:, next(own)] for b in parts.baselines]
    return torch.stack([logdensity[:, n_priors + i] - base[i] for i in range(n_terms)], dim=1)


def _balanced(parts: Parts, method: MethodConfig, eps_u: torch.Tensor, logdensity: torch.Tensor,
              step: Step) -> torch.Tensor:
    """SuperDiff's AND weights for this step: every r_i equal after the step (``balanced_weights``)."""
    # r_i after the step with every kappa at 0 (x' = move(eps_u)) ...
    free = _ratios(parts, method, logdensity + ito_increment(step, step.move(eps_u), parts.predictions()))
    # ... and how kappa_j moves it: x' gains -gain kappa_j delta_j, r_i's score is -delta_i / sigma
    deltas = torch.stack([e - (eps_u if b is None else b) for e, b in zip(parts.conditional, parts.baselines)], 1)
    flat = deltas.flatten(2).double()
    gram = (step.gain / step.sigma) * flat @ flat.transpose(1, 2)
    weights = parts.sample_weights()
    return balanced_weights(free, gram, weights.sum(dim=1), weights)


def langevin_correct(predictor: Predictor, x: torch.Tensor, t: torch.Tensor, alpha_cumprod: float, *, steps: int,
                     size: float, generator: torch.Generator) -> torch.Tensor:
    """Unadjusted Langevin steps on p_t with the (composed) score -eps / sigma_t (Du et al. 2023, ULA).

    Each step is ``x += (eta / 2) * score + sqrt(eta) * z`` with ``eta = size * sigma_t**2``, so ``size`` is
    a fraction of the noise level's variance whatever t is: the chain leaves p_t unchanged (up to the
    discretisation error of ``size``) and pulls x towards where every composed model agrees.
    """
    sigma = (1.0 - alpha_cumprod) ** 0.5
    for _ in range(steps):
        eps = predictor(x, t).to(x.dtype)
        z = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
        x = x - 0.5 * size * sigma * eps + (size**0.5) * sigma * z
    return x


def mala_correct(predictor: Predictor, x: torch.Tensor, t: torch.Tensor, alpha_cumprod: float, *, steps: int,
                 size: float, generator: torch.Generator,
                 trace: Trace | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Metropolis-adjusted Langevin steps on p_t with the composed score; returns x and eps*(x).

    The proposal is the Langevin step of :func:`langevin_correct`. Its acceptance needs log p_t(x') - log p_t(x),
    which no score network gives; it is the line integral of the composed score from x to x', taken by the
    trapezoid rule, ``<x' - x, s(x) + s(x')> / 2`` (exact where log p_t is quadratic). The prediction at the
    proposal is needed for the next proposal anyway, so each step costs one composed prediction, as ULA, and
    the chain hands its last prediction to the next sampler step. Each chain's acceptance rate goes to ``trace``.
    """
    sigma = (1.0 - alpha_cumprod) ** 0.5
    eta = size * sigma**2
    dims = tuple(range(1, x.ndim))
    eps = predictor(x, t).to(x.dtype)
    accepted = torch.zeros((), device=x.device)
    for _ in range(steps):
        score = -eps / sigma
        z = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
        proposal = x + 0.5 * eta * score + eta**0.5 * z
        eps_new = predictor(proposal, t).to(x.dtype)
        score_new = -eps_new / sigma
        log_ratio = 0.5 * ((proposal - x) * (score + score_new)).sum(dims)
        forward = (proposal - x - 0.5 * eta * score).pow(2).sum(dims)
        backward = (x - proposal - 0.5 * eta * score_new).pow(2).sum(dims)
        log_accept = log_ratio + (forward - backward) / (2 * eta)
        u = torch.rand(x.shape[0], generator=generator, device=generator.device).to(x.device)
        accept = u.log() < log_accept
        view = (-1,) + (1,) * (x.ndim - 1)
        x = torch.where(accept.view(view), proposal, x)
        eps = torch.where(accept.view(view), eps_new, eps)
        accepted = accepted + accept.float().mean()
    if trace is not None:
        trace.acceptance.append(float(accepted) / steps)
    return x, eps
