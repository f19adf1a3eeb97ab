"""Resumable training state: one folder per checkpoint, the newest readable one resumed.

A run's ``checkpoints/step-0000500/`` holds one safetensors file per saved module (``denoiser``, ``ema``,
``model``, ...), ``optimizer.safetensors`` (the optimizer's tensors, flattened), ``state.json`` (the step, the
optimizer's param groups and whatever else the trainer keeps: its LR scheduler, the settings a resumed run must
share) and ``SHA256SUMS``. Each folder is written atomically; the newest ``keep`` are kept. No pickle anywhere.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcdm.errors import CheckpointError, ConfigError

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.json"
OPTIMIZER = "optimizer"


@dataclass
class Checkpoint:
    """What a checkpoint folder holds: the step, each module's tensors, the optimizer's state dict, the rest."""

    step: int
    modules: dict[str, dict]
    optimizer: dict
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoint_folder(checkpoints: Path, step: int) -> Path:
    return checkpoints / f"step-{step:07d}"


def save_checkpoint(checkpoints: Path, checkpoint: Checkpoint, *, keep: int) -> Path:
    """Write ``checkpoint`` as ``checkpoints/step-NNNNNNN`` atomically, then remove all but the newest ``keep``."""
    from safetensors.torch import save_file

    from mcdm.atomic import atomic_folder
    from mcdm.checkpoint import write_checksums

    folder = checkpoint_folder(checkpoints, checkpoint.step)
    tensors, groups = _flatten_optimizer(checkpoint.optimizer)
    with atomic_folder(folder) as tmp:
        for name, state in checkpoint.modules.items():
            save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, tmp / f"{name}.safetensors")
        save_file(tensors, tmp / f"{OPTIMIZER}.safetensors")
        (tmp / STATE_FILE).write_text(json.dumps({"step": checkpoint.step, "param_groups": groups,
                                                  **checkpoint.extra}))
        write_checksums(tmp)
    for old in sorted(checkpoints.glob("step-*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def read_checkpoint(folder: Path, modules: tuple[str, ...]) -> Checkpoint:
    """Read one checkpoint folder, refusing one whose bytes changed since it was written (SHA256SUMS) or
    whose tensors are not finite."""
    import torch

    from mcdm.readers import read_weights_folder

    files = tuple(f"{name}.safetensors" for name in (*modules, OPTIMIZER))
    state, weights = read_weights_folder(folder, STATE_FILE, files, what="training checkpoint")
    for file, tensors in weights.items():
        for key, tensor in tensors.items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise CheckpointError(f"{str(folder / file)!r}: tensor {key!r} holds NaN or infinite values")
    try:
        step, groups = int(state.pop("step")), state.pop("param_groups")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{str(folder / STATE_FILE)!r} has no step and param_groups") from exc
    return Checkpoint(step=step, modules={name: weights[f"{name}.safetensors"] for name in modules},
                      optimizer=_unflatten_optimizer(weights[f"{OPTIMIZER}.safetensors"], groups), extra=state)


def resume(checkpoints: Path, modules: tuple[str, ...], restore: Callable[[Checkpoint], None], *,
           announce: bool = True) -> Checkpoint:
    """Restore the newest checkpoint that reads and fits (``restore`` applies it); a corrupt or unfitting newest
    one falls back to the one before. A mismatch that ``restore`` raises as ``ConfigError`` stops at once."""
    candidates = sorted(checkpoints.glob("step-*"), reverse=True)
    if not candidates:
        raise CheckpointError(f"nothing to resume: no checkpoints in {str(checkpoints)!r}")
    for candidate in candidates:
        try:
            checkpoint = read_checkpoint(candidate, modules)
            restore(checkpoint)
        except ConfigError:
            raise
        except Exception as exc:  # a torn or corrupt checkpoint: try the one before
            if announce:
                print(f"skipping unreadable checkpoint {candidate}: {type(exc).__name__}: {exc}")
            continue
        if announce:
            print(f"resumed from {candidate} (step {checkpoint.step})")
        return checkpoint
    raise CheckpointError(f"no checkpoint in {str(checkpoints)!r} could be loaded")


def refuse_existing(checkpoints: Path) -> None:
    """A run that does not resume must not silently mix with the checkpoints of an earlier one."""
    if checkpoints.exists() and any(checkpoints.iterdir()):
        raise ConfigError(f"{str(checkpoints.parent)!r} already holds checkpoints: pass resume to continue, "
                          "or choose another out")


def check_same_settings(saved: dict, settings: dict, where: Path) -> None:
    """Settings a resumed run must share with the run it continues (those the saved run recorded)."""
    for key, value in settings.items():
        if key in saved and saved[key] != value:
            raise ConfigError(f"cannot resume {str(where)!r}: it was trained with {key}={saved[key]!r}, "
                              f"this run asks for {key}={value!r}")


def _flatten_optimizer(state_dict: dict) -> tuple[dict, list]:
    """Optimizer state as flat tensors ("<param index>.<name>") for safetensors, plus JSON-ready param groups."""
    import torch

    tensors = {f"{index}.{name}": torch.as_tensor(value).detach().cpu().contiguous()
               for index, per_param in state_dict["state"].items() for name, value in per_param.items()}
    return tensors, state_dict["param_groups"]


def _unflatten_optimizer(tensors: dict, param_groups: list) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": param_groups}
