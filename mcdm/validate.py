"""Checks of a generation request's arguments, made before any model loads and again where they are used.

The command line, the Python API and the browser front end share these, so a value is refused with the same
one-line ``ArgumentError`` wherever it comes from. Nothing here imports torch: a malformed argument is refused
in well under a second.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from mcdm.errors import ArgumentError, UnknownNameError

MAX_WEIGHT = 100.0  # |w_i| beyond this only amplifies the models' errors: no sampler survives it
DEVICE = re.compile(r"^(cpu|cuda|mps|xpu)(:\d+)?$")
# Memory one image of a sampling batch holds, per pixel and per network evaluation of a step: about 0.6 KiB on the
# shipped 32x32 composition (peak RSS at 16 and 128 images, three modalities with own baselines: 7 evaluations, about
# 4 MiB an image); three times that, so the bound refuses only requests that cannot fit.
BYTES_PER_PIXEL_AND_CALL = 2 * 1024


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ArgumentError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return value


def check_steps(steps: Any, num_train_timesteps: int, scheduler: str) -> int:
    """Sampling steps: at least 1 and at most the models' training timesteps (no sampler can take more)."""
    check_count(steps, "steps")
    if steps > num_train_timesteps:
        raise ArgumentError(f"steps={steps}: the {scheduler} sampler takes at most the models' "
                            f"{num_train_timesteps} training timesteps")
    return steps


def check_weight(name: str | None, weight: Any) -> float:
    """A modality's weight: a finite number in [-MAX_WEIGHT, MAX_WEIGHT] (negative is NOT); ``name`` None
    where the caller names the modality itself."""
    what = "weight" if name is None else f"weight of {name!r}"
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        raise ArgumentError(f"{what} must be a number, got {weight!r}")
    if not math.isfinite(weight) or abs(weight) > MAX_WEIGHT:
        raise ArgumentError(f"{what} must be finite and within [-{MAX_WEIGHT:g}, {MAX_WEIGHT:g}], got {weight!r}")
    return float(weight)


def check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ArgumentError(f"{what} must be a non-empty name, got {value!r}")
    return value


def check_device_name(device: Any) -> str:
    """A device string torch could mean (cpu, cuda, cuda:1, mps, xpu); whether it exists is checked on use."""
    if not isinstance(device, str) or not DEVICE.match(device.strip()):
        raise ArgumentError(f"device {device!r} is not one of cpu, cuda, cuda:N, mps, xpu")
    return device.strip()


def check_device_available(device: str) -> None:
    """The device exists on this machine (imports torch)."""
    import torch

    kind, _, index = check_device_name(device).partition(":")
    if kind == "cpu":
        return
    backend = getattr(torch, kind, None)
    available = backend is not None and backend.is_available()
    count = backend.device_count() if available and hasattr(backend, "device_count") else (1 if available else 0)
    if not available:
        raise ArgumentError(f"device {device!r}: this machine has no {kind} device (use --device cpu)")
    if index and int(index) >= count:
        raise ArgumentError(f"device {device!r}: this machine has {count} {kind} device(s), numbered from 0")


def max_images(sample_size: int, channels: int, calls_per_step: int, available_bytes: int | None = None) -> int:
    """How many images one sampling batch can hold in this machine's available memory, at a generous estimate.

    The estimate is ``BYTES_PER_PIXEL_AND_CALL`` bytes per pixel of an image for each network evaluation of a
    step (the activations of every composed model's batch live at once).
    """
    available = available_memory() if available_bytes is None else available_bytes
    per_image = BYTES_PER_PIXEL_AND_CALL * sample_size * sample_size * max(1, calls_per_step)
    return max(1, available // per_image)


def check_num_images(num_images: Any, bound: int) -> int:
    check_count(num_images, "num_images")
    if num_images > bound:
        raise ArgumentError(f"num_images={num_images} does not fit in this machine's memory in one batch: at most "
                            f"about {bound} (generate in several calls, or on a larger device)")
    return num_images


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable on Linux; physical pages elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_output_file(path: str | os.PathLike, suffix: str, option: str) -> Path:
    """An output file that can be written: the right suffix, not a folder, in a folder this process can write.

    The check writes (and removes) a probe file in the nearest existing folder, so read-only mounts, ``/sys``
    and a path under a file are refused before any work.
    """
    path = Path(path).expanduser()
    if path.suffix.lower() != suffix:
        raise ArgumentError(f"{option} {str(path)!r} is not a {suffix} file")
    if path.is_dir():
        raise ArgumentError(f"{option} {str(path)!r} is a folder")
    check_writable_folder(path.parent, option, str(path))
    return path


def check_writable_folder(folder: str | os.PathLike, option: str, shown: str | None = None) -> Path:
    """A folder that exists and can be written, or that can be made in the nearest existing folder."""
    folder = Path(folder).expanduser()
    shown = shown or str(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ArgumentError(f"{option} {shown!r}: {str(existing)!r} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".mcdm-write-probe-"):
            pass
    except OSError as exc:
        raise ArgumentError(f"{option} {shown!r}: cannot write in {str(existing)!r} ({exc.strerror or exc})") from exc
    return folder


def check_scheduler_name(name: Any) -> str:
    from mcdm.schedule import SCHEDULERS

    check_name(name, "scheduler")
    if name not in SCHEDULERS:
        raise UnknownNameError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")
    return name


def check_modality_names(names, available) -> None:
    """Every named modality has a model in the composition."""
    unknown = [name for name in names if name not in available]
    if unknown:
        raise UnknownNameError(f"no model for modality {unknown[0]!r} in this composition; it has: "
                               f"{', '.join(available) or 'none'}")


def check_weight_names(weights, conditions) -> None:
    """A weight only for a modality that has a condition in the request."""
    for name in weights:
        if name not in conditions:
            raise UnknownNameError(f"weight given for {name!r}, which has no condition in this request")


def check_request(folder: Path, config, *, conditions, weights, steps, scheduler, num_images) -> None:
    """What can be checked of a request against a composition's files before its models load."""
    from mcdm.checkpoint import SCHEDULE
    from mcdm.stock import PIPELINE_SCHEDULE
    from mcdm.readers import read_json_object
    from mcdm.errors import CheckpointError

    check_modality_names(conditions, list(config.modalities))
    check_weight_names(weights, conditions)
    scheduler = check_scheduler_name(config.scheduler if scheduler is None else scheduler)
    prior = folder / config.prior
    schedule = prior / SCHEDULE
    if not schedule.exists() and (prior / PIPELINE_SCHEDULE).exists():  # a stock diffusers pipeline folder
        schedule = prior / PIPELINE_SCHEDULE
    timesteps = read_json_object(schedule, CheckpointError).get("num_train_timesteps")
    if isinstance(timesteps, int):
        check_steps(config.steps if steps is None else steps, timesteps, scheduler)
    size = _sample_size_hint(prior)
    if size is not None:
        calls = 1 + 2 * len(conditions)  # at most: every modality with its own baseline
        check_num_images(num_images, max_images(size, 3, calls))


def _sample_size_hint(model_folder: Path) -> int | None:
    """The sample size a model folder declares in its JSON (the built-in denoisers do), or None."""
    from mcdm.errors import CheckpointError
    from mcdm.readers import read_json_object

    try:
        value = read_json_object(model_folder / "unet" / "config.json", CheckpointError).get("sample_size")
    except CheckpointError:  # another denoiser type, or a damaged file that loading will report
        return None
    return value if isinstance(value, int) and value > 0 else None
