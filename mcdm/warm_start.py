"""Warm start (``mcdm train ... init_from=FOLDER``): a new denoiser begins from a trained model folder's weights.

Tensors are matched by name and shape (the folder is loaded as ``load_model`` loads any model: safetensors only,
finite weights). The rules:

- a tensor of the folder that the new denoiser lacks, or has in another shape, is an error naming it;
- one exception: an input convolution (``conv_in.weight``) with more input channels than the folder's, as when a
  modality concatenates condition channels to the prior's ``x_t``, takes the folder's channels first and zeros
  for the extra ones, so the warm-started model begins as the folder's model, whatever the condition;
- tensors of the new denoiser that the folder lacks (a label embedding, a token encoder) keep their fresh
  initialisation, and the report names them;
- the folder must share the run's noise schedule and prediction type, or its weights would mean something else.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mcdm.checkpoint import load_model, verify_checksums
from mcdm.errors import ConfigError
from mcdm.schedule import Prediction, alphas_cumprod

SHOWN = 3  # mismatched tensors named in the error


def warm_start(denoiser, folder: Path, plugins, *, schedule: dict, prediction: Prediction) -> str:
    """Copy ``folder``'s weights into ``denoiser`` in place; a one-line report of what was copied and what not."""
    verify_checksums(folder, required=False)  # a SHA256SUMS is checked if present, else a warning
    source = load_model(folder, plugins)
    where = f"init_from={str(folder)!r}"
    if source.prediction is not Prediction(prediction):
        raise ConfigError(f"{where} predicts {source.prediction.value}, this run trains {Prediction(prediction).value}"
                          f": set prediction={source.prediction.value} or start from another model")
    theirs, ours = alphas_cumprod(source.schedule_config), alphas_cumprod(schedule)
    if theirs.shape != ours.shape or not torch.allclose(theirs, ours, rtol=0, atol=1e-6):
        raise ConfigError(f"{where} was trained on another noise schedule than this run's schedule={schedule}")
    given, target = source.denoiser.state_dict(), denoiser.state_dict()
    merged, widened, mismatched = dict(target), [], []
    for name, tensor in given.items():
        if name not in target:
            mismatched.append(f"{name} (not in the new denoiser)")
        elif tensor.shape == target[name].shape:
            merged[name] = tensor
        elif _widens_input(name, tensor, target[name]):
            wide = torch.zeros_like(target[name])
            wide[:, : tensor.shape[1]] = tensor
            merged[name] = wide
            widened.append(f"{name} ({tensor.shape[1]} -> {target[name].shape[1]} input channels, the extra ones 0)")
        else:
            mismatched.append(f"{name} {tuple(tensor.shape)} vs {tuple(target[name].shape)}")
    if mismatched:
        more = f" and {len(mismatched) - SHOWN} more" if len(mismatched) > SHOWN else ""
        raise ConfigError(f"{where} does not fit the new {type(denoiser).type_name} denoiser: "
                          f"{', '.join(mismatched[:SHOWN])}{more}")
    denoiser.load_state_dict(merged)
    fresh = [name for name in target if name not in given]
    return (f"warm start from {folder}: {len(given) - len(widened)} tensors copied"
            + (f", widened {'; '.join(widened)}" if widened else "")
            + (f"; freshly initialised: {', '.join(fresh)}" if fresh else ""))


def _widens_input(name: str, given: torch.Tensor, target: torch.Tensor) -> bool:
    return (name.split(".")[-2:] == ["conv_in", "weight"] and given.ndim == target.ndim == 4
            and given.shape[0] == target.shape[0] and given.shape[2:] == target.shape[2:]
            and given.shape[1] < target.shape[1])
