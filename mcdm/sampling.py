"""The sampling loop: one diffusers scheduler, one predictor, one ``scheduler.step`` per timestep."""

from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm

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
) -> torch.Tensor:
    """Draw x_T ~ N(0, I) from ``generator`` and run the reverse process; returns x_0 in the model's range.

    The initial noise is drawn on the generator's device and moved, so a seed gives the same images
    whatever device runs the networks. ``callback(i, t, x)`` sees every intermediate sample.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    scheduler.set_timesteps(steps)  # timesteps stay on the CPU: no device sync when the loop reads them
    x = torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)
    x = (x * scheduler.init_noise_sigma).to(device)  # the sampler's state stays float32 (see Composer's precision)
    for i, t in enumerate(tqdm(scheduler.timesteps, desc="sampling", disable=not progress, leave=False)):
        eps = predictor(scheduler.scale_model_input(x, t), t)
        x = scheduler.step(eps, t, x, generator=generator).prev_sample
        if callback is not None:
            callback(i, t, x)
    return x
