"""Stock diffusers folders as mcdm models: a ``DDPMPipeline`` / ``DDIMPipeline`` folder or a bare ``UNet2DModel``.

Such a folder (what diffusers' ``train_unconditional.py`` writes) loads as the prior by path, with its own
scheduler config, without an ``mcdm.json``: :func:`stock_manifest` says what the manifest would be, and the
``unet`` denoiser type loads it through the same checks as any model folder. ``mcdm import`` (:func:`import_folder`)
writes that manifest into the folder, naming the modality a user's own conditional UNet serves.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mcdm.errors import CheckpointError, ConfigError
from mcdm.readers import read_json_object

PIPELINES = ("DDPMPipeline", "DDIMPipeline")
INDEX = "model_index.json"
PIPELINE_SCHEDULE = Path("scheduler") / "scheduler_config.json"


def stock_manifest(folder: str | os.PathLike, modality: str | None = None) -> tuple[dict, Path] | None:
    """The mcdm.json a stock folder stands for and its scheduler config's path; None if it is no stock folder.

    A pipeline of another class is an error naming it (an mcdm.json must say how mcdm reads it).
    """
    folder = Path(folder)
    if (folder / INDEX).is_file():
        kind = read_json_object(folder / INDEX, CheckpointError).get("_class_name")
        if kind not in PIPELINES:
            raise CheckpointError(f"{str(folder)!r} is a diffusers {kind} folder without an mcdm.json; mcdm reads "
                                  f"{' and '.join(PIPELINES)} folders as they are (others through their plugin)")
        unet, schedule = "unet", folder / PIPELINE_SCHEDULE
    elif (folder / "config.json").is_file() and \
            read_json_object(folder / "config.json", CheckpointError).get("_class_name") == "UNet2DModel":
        unet, schedule = ".", folder / "scheduler_config.json"
    else:
        return None
    if not schedule.is_file():
        raise CheckpointError(f"{str(folder)!r} is a stock diffusers folder without {str(schedule)!r}: the noise "
                              "schedule it was trained on is unknown")
    unet_config = read_json_object(folder / unet / "config.json", CheckpointError)
    channels = [unet_config.get(key) for key in ("in_channels", "out_channels")]
    if not all(isinstance(c, int) and c > 0 for c in channels) or channels[0] < channels[1]:
        raise CheckpointError(f"{str(folder / unet / 'config.json')!r}: in_channels {channels[0]!r} and "
                              f"out_channels {channels[1]!r} are not those of an image UNet")
    cond_channels = channels[0] - channels[1]
    if modality is None and cond_channels:
        raise CheckpointError(f"{str(folder)!r}: its UNet reads {cond_channels} condition channel(s) beside the "
                              "image, so it is no prior; `mcdm import FOLDER --modality NAME` says which it serves")
    prediction = read_json_object(schedule, CheckpointError).get("prediction_type", "epsilon")
    manifest = {
        "format": 1,
        "denoiser": "unet",
        "denoiser_config": {"cond_channels": cond_channels, "unet_folder": unet},
        "modality": modality,
        "prediction_type": prediction,
        "space": "pixel",
    }
    return manifest, schedule


def import_folder(folder: str | os.PathLike, modality: str | None, plugins) -> Path:
    """Write ``mcdm.json``, ``scheduler_config.json`` and ``SHA256SUMS`` into a stock folder, then load it as a check.

    A modality must use the ``unet`` denoiser type (condition concatenated to x_t) with as many condition channels
    as the UNet reads beyond the image.
    """
    from mcdm.checkpoint import MANIFEST, SCHEDULE, load_model, write_checksums
    from mcdm.readers import read_text

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{str(folder)!r} does not exist")
    if (folder / MANIFEST).exists():
        raise CheckpointError(f"{str(folder / MANIFEST)!r} already exists: {str(folder)!r} is an mcdm model folder")
    found = stock_manifest(folder, modality)
    if found is None:
        raise CheckpointError(f"{str(folder)!r} is neither a {' / '.join(PIPELINES)} folder nor a UNet2DModel folder")
    manifest, schedule = found
    if modality is not None:
        _check_modality(plugins, modality, manifest["denoiser_config"]["cond_channels"], folder)
    written = [folder / MANIFEST]
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if schedule != folder / SCHEDULE:
        (folder / SCHEDULE).write_text(read_text(schedule, CheckpointError))
        written.append(folder / SCHEDULE)
    try:
        load_model(folder, plugins)
    except Exception:
        for path in written:  # leave the folder as it was found
            path.unlink()
        raise
    write_checksums(folder)
    return folder / MANIFEST


def _check_modality(plugins, modality: str, cond_channels: int, folder: Path) -> None:
    registered = plugins.modality(modality)
    if registered.denoiser_type != "unet":
        raise ConfigError(f"modality {modality!r} conditions a {registered.denoiser_type!r} denoiser; a stock "
                          "UNet2DModel serves modalities whose condition is concatenated to x_t ('unet')")
    expected = registered.denoiser_config(sample_size=1, image_channels=3).get("cond_channels")
    if expected != cond_channels:
        raise ConfigError(f"{str(folder)!r}: its UNet reads {cond_channels} condition channel(s) beside the image, "
                          f"but modality {modality!r} gives {expected}")
