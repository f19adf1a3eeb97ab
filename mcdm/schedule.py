"""Noise schedules: what two models must share to be composed, and the samplers built on them.

A model's schedule is the diffusers scheduler config it was trained with. Every model's output is
brought to eps at the boundary (``to_eps``), so the combiner and the sampler see one parameterisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from mcdm.errors import IncompatibleModelsError, MCDMError, UnknownNameError

MAX_TRAIN_TIMESTEPS = 100_000

if TYPE_CHECKING:  # torch is imported where a function needs it, so the scheduler names are known without it
    import torch


class Prediction(str, Enum):
    EPSILON = "epsilon"
    V = "v_prediction"
    SAMPLE = "sample"


SCHEDULERS = {
    "ddpm": "DDPMScheduler",
    "ddim": "DDIMScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
}


def make_scheduler(name: str, schedule_config: dict):
    """A fresh diffusers scheduler of kind ``name`` on the noise schedule the models were trained with."""
    if name not in SCHEDULERS:
        raise UnknownNameError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")
    import diffusers

    config = {k: v for k, v in schedule_config.items() if not k.startswith("_")}
    config.pop("prediction_type", None)  # the sampler always receives eps (see to_eps)
    return getattr(diffusers, SCHEDULERS[name]).from_config(config, prediction_type="epsilon")


def alphas_cumprod(schedule_config: dict) -> torch.Tensor:
    """abar_t for t = 0..T-1, computed by diffusers from the config (betas, beta_schedule, ...)."""
    import torch
    from diffusers import DDPMScheduler

    config = {k: v for k, v in schedule_config.items() if not k.startswith("_")}
    return DDPMScheduler.from_config(config).alphas_cumprod.to(torch.float64)


def check_schedule(config: dict, source: str, error: type[MCDMError]) -> torch.Tensor:
    """abar_t of a schedule config, or ``error`` naming ``source`` and the key that diffusers cannot build."""
    import torch

    steps = config.get("num_train_timesteps")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_TRAIN_TIMESTEPS:
        raise error(f"{source}: key 'num_train_timesteps' must be an integer in [1, {MAX_TRAIN_TIMESTEPS}], "
                    f"got {steps!r}")
    try:
        abar = alphas_cumprod(config)
    except Exception as exc:  # diffusers: NotImplementedError for an unknown beta_schedule, TypeError, ...
        key = "beta_schedule" if isinstance(exc, NotImplementedError) else None
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        at = f" key {key!r} ({config.get(key)!r})" if key else ""
        raise error(f"{source}:{at} not a noise schedule diffusers can build: {detail}") from exc
    if not (torch.isfinite(abar).all() and (abar > 0).all() and (abar <= 1).all() and (abar[1:] <= abar[:-1]).all()):
        raise error(f"{source}: its alphas_cumprod are not a decreasing sequence in (0, 1] (check the betas)")
    return abar


def to_eps(output: torch.Tensor, x_t: torch.Tensor, abar_t: torch.Tensor, prediction: Prediction) -> torch.Tensor:
    """Convert a model output in ``prediction`` parameterisation to eps, with x_t = sqrt(abar) x0 + sqrt(1-abar) eps.

    ``abar_t`` broadcasts against ``x_t`` (shape (B,1,1,1) or a scalar tensor).
    """
    if prediction is Prediction.EPSILON:
        return output
    a = abar_t.sqrt().to(x_t.dtype)
    s = (1 - abar_t).sqrt().to(x_t.dtype)
    if prediction is Prediction.V:  # v = a eps - s x0  =>  eps = a v + s x_t
        return a * output + s * x_t
    return (x_t - a * output) / s  # output is x0


@dataclass(frozen=True)
class ModelSignature:
    """The facts that must agree between composed models, with the model's name for messages."""

    name: str
    num_train_timesteps: int
    alphas_cumprod: torch.Tensor
    sample_size: int
    channels: int
    space: str


def check_compatible(signatures: list[ModelSignature]) -> None:
    """Raise IncompatibleModelsError naming both models and the mismatch, or return quietly."""
    import torch

    if not signatures:
        return
    ref = signatures[0]
    for other in signatures[1:]:
        for field_name in ("space", "num_train_timesteps", "sample_size", "channels"):  # space first: it explains the rest
            a, b = getattr(ref, field_name), getattr(other, field_name)
            if a != b:
                raise IncompatibleModelsError(
                    f"cannot compose {ref.name!r} and {other.name!r}: {field_name} differs ({a} vs {b})"
                )
        if not torch.allclose(ref.alphas_cumprod, other.alphas_cumprod, rtol=1e-5, atol=1e-7):
            worst = (ref.alphas_cumprod - other.alphas_cumprod).abs().argmax().item()
            raise IncompatibleModelsError(
                f"cannot compose {ref.name!r} and {other.name!r}: noise schedules differ "
                f"(alphas_cumprod at t={worst}: {ref.alphas_cumprod[worst].item():.6g} vs "
                f"{other.alphas_cumprod[worst].item():.6g})"
            )
