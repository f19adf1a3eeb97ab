"""Model folders on disk: save atomically, load safely (safetensors + JSON only), verify checksums.

Layout of one model folder::

    mcdm.json               which denoiser type, which modality (none for a prior), parameterisation, space
    scheduler_config.json   the diffusers noise schedule the model was trained on
    unet/ ...               the denoiser's own files (diffusers save_pretrained: config.json + safetensors)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from mcdm.atomic import atomic_folder
from mcdm.errors import CheckpointError
from mcdm.schedule import ModelSignature, Prediction, alphas_cumprod

MANIFEST = "mcdm.json"
SCHEDULE = "scheduler_config.json"
CHECKSUMS = "SHA256SUMS"
FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    """A denoiser with what the engine must know to compose it."""

    name: str
    denoiser: "object"  # mcdm.modality.Denoiser; typed loosely to keep torch out of this import
    modality: str | None
    prediction: Prediction
    schedule_config: dict
    space: str = "pixel"

    def signature(self) -> ModelSignature:
        return ModelSignature(
            name=self.name,
            num_train_timesteps=int(self.schedule_config["num_train_timesteps"]),
            alphas_cumprod=alphas_cumprod(self.schedule_config),
            sample_size=self.denoiser.sample_size,
            channels=self.denoiser.image_channels,
            space=self.space,
        )


def save_model(
    folder: str | os.PathLike,
    denoiser,
    *,
    modality: str | None,
    schedule_config: dict,
    prediction: Prediction = Prediction.EPSILON,
    space: str = "pixel",
    extra: dict | None = None,
) -> Path:
    """Write a model folder atomically: a crash leaves the previous folder (or none), never half of one."""
    folder = Path(folder)
    manifest = {
        "format": FORMAT_VERSION,
        "denoiser": denoiser.type_name,
        "denoiser_config": denoiser.config(),
        "modality": modality,
        "prediction_type": Prediction(prediction).value,
        "space": space,
        **(extra or {}),
    }
    schedule = {k: v for k, v in schedule_config.items() if not k.startswith("_")}
    with atomic_folder(folder) as tmp:
        denoiser.save_weights(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / SCHEDULE).write_text(json.dumps(schedule, indent=2, default=_json_default) + "\n")
    return folder


def read_manifest(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {str(folder)!r} does not exist")
    path = folder / MANIFEST
    if not path.is_file():
        raise CheckpointError(f"{str(folder)!r} is not an mcdm model folder: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or "denoiser" not in manifest:
        raise CheckpointError(f"{str(path)!r} does not name a denoiser type")
    return manifest


def load_model(folder: str | os.PathLike, plugins, *, name: str | None = None, device="cpu") -> LoadedModel:
    """Load a model folder through the registered denoiser type it names. Only safetensors are read."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if not any(folder.rglob("*.safetensors")):
        raise CheckpointError(f"{str(folder)!r} holds no .safetensors weights (pickled checkpoints are not loaded)")
    schedule_path = folder / SCHEDULE
    if not schedule_path.is_file():
        raise CheckpointError(f"{str(folder)!r} has no {SCHEDULE}: the noise schedule it was trained on is unknown")
    try:
        prediction = Prediction(manifest.get("prediction_type", "epsilon"))
    except ValueError as exc:
        raise CheckpointError(f"{str(folder / MANIFEST)!r}: {exc}") from exc
    denoiser_cls = plugins.denoiser_class(manifest["denoiser"])
    try:
        denoiser = denoiser_cls.load_weights(folder, manifest.get("denoiser_config", {}))
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"cannot load the weights in {str(folder)!r}: {exc}") from exc
    return LoadedModel(
        name=name or folder.name,
        denoiser=denoiser.to(device).eval().requires_grad_(False),
        modality=manifest.get("modality"),
        prediction=prediction,
        schedule_config=json.loads(schedule_path.read_text()),
        space=manifest.get("space", "pixel"),
    )


def write_checksums(folder: str | os.PathLike) -> Path:
    """Write SHA256SUMS (``sha256sum -c`` format) for every file under ``folder``."""
    folder = Path(folder)
    lines = [f"{_sha256(p)}  {p.relative_to(folder).as_posix()}" for p in _files(folder) if p.name != CHECKSUMS]
    path = folder / CHECKSUMS
    path.write_text("\n".join(lines) + "\n")
    return path


def verify_checksums(folder: str | os.PathLike) -> None:
    """Raise CheckpointError for any listed file that is missing or whose SHA-256 differs."""
    folder = Path(folder)
    path = folder / CHECKSUMS
    if not path.is_file():
        raise CheckpointError(f"{str(folder)!r} has no {CHECKSUMS}")
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        digest, rel = line.split(maxsplit=1)
        rel = rel.lstrip("*")
        target = folder / rel
        if not target.is_file():
            raise CheckpointError(f"{str(target)!r} is listed in {CHECKSUMS} but missing")
        if _sha256(target) != digest:
            raise CheckpointError(f"{str(target)!r} does not match its SHA-256 in {CHECKSUMS} (corrupt or modified)")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
