"""The sampling loop: one diffusers scheduler, one predictor, one ``scheduler.step`` per timestep."""

from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm

from mcdm.errors import ConfigError

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
) -> torch.Tensor:
    """Draw x_T ~ N(0, I) from ``generator`` and run the reverse process; returns x_0 in the model's range.

    The initial noise is drawn on the generator's device and moved, so a seed gives the same images
    whatever device runs the networks. ``callback(i, t, x)`` sees every intermediate sample.
    ``corrector_steps`` Langevin steps (:func:`langevin_correct`) follow every step but the last.
    """
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}")
    if corrector_steps < 0 or corrector_size <= 0:
        raise ConfigError(f"corrector_steps must be >= 0 and corrector_size > 0, got {corrector_steps}, {corrector_size}")
    if corrector_steps and float(scheduler.init_noise_sigma) != 1.0:
        raise ConfigError(f"Langevin corrector steps need a sampler whose state is x_t itself (ddpm, ddim, dpm++); "
                         f"{type(scheduler).__name__} keeps a rescaled state")
    scheduler.set_timesteps(steps)  # timesteps stay on the CPU: no device sync when the loop reads them
    x = torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)
    x = (x * scheduler.init_noise_sigma).to(device)  # the sampler's state stays float32 (see Composer's precision)
    for i, t in enumerate(tqdm(scheduler.timesteps, desc="sampling", disable=not progress, leave=False)):
        eps = predictor(scheduler.scale_model_input(x, t), t)
        x = scheduler.step(eps, t, x, generator=generator).prev_sample
        if corrector_steps and i + 1 < len(scheduler.timesteps):
            t_next = scheduler.timesteps[i + 1]
            x = langevin_correct(predictor, x, t_next, float(scheduler.alphas_cumprod[int(t_next)]),
                                 steps=corrector_steps, size=corrector_size, generator=generator)
        if callback is not None:
            callback(i, t, x)
    return x


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
