"""Model folders on disk: save atomically, load safely (safetensors + JSON only), verify checksums.

Layout of one model folder::

    mcdm.json               which denoiser type, which modality (none for a prior), parameterisation, space
                            (pixel, or latent with its VAE folder: mcdm.latent)
    scheduler_config.json   the diffusers noise schedule the model was trained on
    unet/ ...               the denoiser's own files (diffusers save_pretrained: config.json + safetensors)
    vae/ ...                a latent model's AutoencoderKL (config.json + safetensors)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from mcdm.atomic import atomic_folder
from mcdm.errors import CheckpointError, UnverifiedModelWarning
from mcdm.readers import (DIFFUSERS_WEIGHTS, nonfinite_tensor, pickle_files, read_json_object, read_text,
                          safetensors_weights)
from mcdm.schedule import ModelSignature, Prediction, alphas_cumprod, check_schedule

MANIFEST = "mcdm.json"
SCHEDULE = "scheduler_config.json"
CHECKSUMS = "SHA256SUMS"
VAE_FOLDER = "vae"  # where save_model puts a latent model's VAE
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
    vae_folder: Path | None = None  # the AutoencoderKL of a latent model (mcdm.latent)

    def signature(self) -> ModelSignature:
        from mcdm.latent import vae_id

        return ModelSignature(
            name=self.name,
            num_train_timesteps=int(self.schedule_config["num_train_timesteps"]),
            alphas_cumprod=alphas_cumprod(self.schedule_config),
            sample_size=self.denoiser.sample_size,
            channels=self.denoiser.image_channels,
            space=self.space if self.vae_folder is None else f"latent:{vae_id(self.vae_folder)}",
        )


def save_model(
    folder: str | os.PathLike,
    denoiser,
    *,
    modality: str | None,
    schedule_config: dict,
    prediction: Prediction = Prediction.EPSILON,
    vae: str | os.PathLike | None = None,
    extra: dict | None = None,
) -> Path:
    """Write a model folder atomically: a crash leaves the previous folder (or none), never half of one.

    ``vae``: the AutoencoderKL folder of a latent model's space, copied in as ``vae/``, so the folder loads and
    composes on its own (None: a pixel model).
    """
    folder = Path(folder)
    manifest = {
        "format": FORMAT_VERSION,
        "denoiser": denoiser.type_name,
        "denoiser_config": denoiser.config(),
        "modality": modality,
        "prediction_type": Prediction(prediction).value,
        **({"space": "pixel"} if vae is None else {"space": "latent", "vae": VAE_FOLDER}),
        **(extra or {}),
    }
    schedule = {k: v for k, v in schedule_config.items() if not k.startswith("_")}
    with atomic_folder(folder) as tmp:
        if vae is not None:
            _copy_vae(Path(vae), tmp / VAE_FOLDER)
        denoiser.save_weights(tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        (tmp / SCHEDULE).write_text(json.dumps(schedule, indent=2, default=_json_default) + "\n")
    return folder


def _copy_vae(source: Path, target: Path) -> None:
    """A VAE's config and safetensors weights (with their shard index, if any), nothing else from its folder."""
    weights = safetensors_weights(source, DIFFUSERS_WEIGHTS, CheckpointError)
    index = source / f"{DIFFUSERS_WEIGHTS}.safetensors.index.json"
    target.mkdir()
    for path in [source / "config.json", *([index] if index.is_file() else []), *weights]:
        shutil.copy2(path, target / path.name)


def read_manifest(folder: str | os.PathLike) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {str(folder)!r} does not exist")
    path = folder / MANIFEST
    if not path.exists():
        raise CheckpointError(f"{str(folder)!r} is not an mcdm model folder: {MANIFEST} is missing (nor is it a "
                              "stock diffusers DDPMPipeline, DDIMPipeline or UNet2DModel folder)")
    manifest = read_json_object(path, CheckpointError)
    if not isinstance(manifest.get("denoiser"), str):
        raise CheckpointError(f"{str(path)!r}: key 'denoiser' must name a denoiser type")
    if not isinstance(manifest.get("denoiser_config", {}), dict):
        raise CheckpointError(f"{str(path)!r}: key 'denoiser_config' must be an object")
    return manifest


def read_schedule(folder: str | os.PathLike, path: Path | None = None) -> dict:
    """A model folder's noise schedule (``path``: a stock folder's own), checked to be one diffusers can build."""
    path = Path(folder) / SCHEDULE if path is None else path
    if not path.exists():
        raise CheckpointError(f"{str(folder)!r} has no {SCHEDULE}: the noise schedule it was trained on is unknown")
    config = read_json_object(path, CheckpointError)
    check_schedule(config, str(path), CheckpointError)
    return config


def load_model(folder: str | os.PathLike, plugins, *, name: str | None = None, device="cpu") -> LoadedModel:
    """Load a model folder through the registered denoiser type it names. Only safetensors are read.

    A pickle-format file anywhere in the folder is refused before anything is opened, and the weights are
    checked finite after loading. A stock diffusers folder without an mcdm.json loads as a prior
    (:mod:`mcdm.stock`).
    """
    from mcdm.stock import stock_manifest

    folder = Path(folder)
    stock = stock_manifest(folder) if folder.is_dir() and not (folder / MANIFEST).exists() else None
    manifest = read_manifest(folder) if stock is None else stock[0]
    pickles = pickle_files(folder)
    if pickles:
        raise CheckpointError(f"{str(pickles[0])!r} is a pickle-format weight file; mcdm loads safetensors only")
    if not any(folder.rglob("*.safetensors")):
        raise CheckpointError(f"{str(folder)!r} holds no .safetensors weights (pickled checkpoints are not loaded)")
    schedule_config = read_schedule(folder, None if stock is None else stock[1])
    try:
        prediction = Prediction(manifest.get("prediction_type", "epsilon"))
    except ValueError as exc:
        raise CheckpointError(f"{str(folder / MANIFEST)!r}: key 'prediction_type': {exc}") from exc
    space, vae_folder = _space(folder, manifest)
    denoiser_cls = plugins.denoiser_class(manifest["denoiser"])
    try:
        denoiser = denoiser_cls.load_weights(folder, manifest.get("denoiser_config", {}))
    except CheckpointError:
        raise
    except Exception as exc:  # the denoiser type's own code (diffusers, a plugin): still one line naming the folder
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot load the weights in {str(folder)!r}: {first}") from exc
    bad = nonfinite_tensor(folder)
    if bad is not None:
        raise CheckpointError(f"{str(bad[0])!r}: tensor {bad[1]!r} holds NaN or infinite values (a broken model)")
    return LoadedModel(
        name=name or folder.name,
        denoiser=denoiser.to(device).eval().requires_grad_(False),
        modality=manifest.get("modality"),
        prediction=prediction,
        schedule_config=schedule_config,
        space=space,
        vae_folder=vae_folder,
    )


def _space(folder: Path, manifest: dict) -> tuple[str, Path | None]:
    """A model's space and, for a latent one, its VAE folder (relative to the model folder)."""
    space = manifest.get("space", "pixel")
    if space not in ("pixel", "latent"):
        raise CheckpointError(f"{str(folder / MANIFEST)!r}: key 'space' must be 'pixel' or 'latent', got {space!r}")
    if space == "pixel":
        return space, None
    vae = manifest.get("vae")
    if not isinstance(vae, str) or not (folder / vae).is_dir():
        raise CheckpointError(f"{str(folder / MANIFEST)!r}: a latent model needs key 'vae' naming its AutoencoderKL "
                              f"folder, got {vae!r}")
    return space, folder / vae


def write_checksums(folder: str | os.PathLike) -> Path:
    """Write SHA256SUMS (``sha256sum -c`` format) for every file under ``folder``."""
    folder = Path(folder)
    lines = [f"{_sha256(p)}  {p.relative_to(folder).as_posix()}" for p in files_under(folder) if p.name != CHECKSUMS]
    path = folder / CHECKSUMS
    path.write_text("\n".join(lines) + "\n")
    return path


def checksums_required_by_env() -> bool:
    """``MCDM_REQUIRE_CHECKSUMS=1``: every folder loaded must carry a SHA256SUMS that lists all its files."""
    return os.environ.get("MCDM_REQUIRE_CHECKSUMS", "").strip().lower() in {"1", "true", "yes"}


def verify_checksums(folder: str | os.PathLike, *, required: bool = True) -> None:
    """Check every file of ``folder`` against its SHA256SUMS; raise CheckpointError naming the first that fails.

    A listed file that is missing or differs, and a SHA256SUMS that is not a readable, non-empty list, are
    always errors. A missing SHA256SUMS, and files present but not listed, are errors when ``required`` (a
    composition found by name, or checksums required by the caller) and one-line warnings otherwise.
    """
    folder = Path(folder)
    path = folder / CHECKSUMS
    if not path.exists():
        _refuse_or_warn(required, f"{str(folder)!r} has no {CHECKSUMS}: its files cannot be verified")
        return
    listed = _read_checksums(path)
    for rel, digest in listed.items():
        target = folder / rel
        if not target.is_file():
            raise CheckpointError(f"{str(target)!r} is listed in {CHECKSUMS} but missing")
        if _sha256(target) != digest:
            raise CheckpointError(f"{str(target)!r} does not match its SHA-256 in {CHECKSUMS} (corrupt or modified)")
    unlisted = [p for p in files_under(folder) if p != path and p.relative_to(folder).as_posix() not in listed]
    if unlisted:
        more = f" and {len(unlisted) - 1} more" if len(unlisted) > 1 else ""
        _refuse_or_warn(required, f"{str(unlisted[0])!r}{more} not listed in {str(path)!r} (added after it was "
                                  "written, or tampered with)")


def _refuse_or_warn(refuse: bool, message: str) -> None:
    if refuse:
        raise CheckpointError(message)
    warnings.warn(message + "; loading anyway (MCDM_REQUIRE_CHECKSUMS=1 or --require-checksums refuses it)",
                  UnverifiedModelWarning, stacklevel=3)


_CHECKSUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def _read_checksums(path: Path) -> dict[str, str]:
    """``sha256sum`` lines as {relative path: digest}; anything else in the file is an error naming the line."""
    listed: dict[str, str] = {}
    for number, line in enumerate(read_text(path, CheckpointError).splitlines(), start=1):
        if not line.strip():
            continue
        match = _CHECKSUM_LINE.match(line)
        rel = match.group(2) if match else ""
        if not match or rel.startswith("/") or ".." in Path(rel).parts:
            raise CheckpointError(f"{str(path)!r} line {number} is not '<sha256>  <relative path>': {line[:80]!r}")
        listed[rel] = match.group(1)
    if not listed:
        raise CheckpointError(f"{str(path)!r} lists no files")
    return listed


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, in sorted order (the order checksums are taken in)."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def folder_digest(folder: Path) -> str:
    """SHA-256 over the paths and contents of every file below ``folder``: one name for what it holds."""
    digest = hashlib.sha256()
    for path in files_under(folder):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        hash_into(digest, path)
    return digest.hexdigest()


def hash_into(digest, path: Path) -> None:
    """Feed ``path``'s bytes to a hashlib ``digest``, a block at a time."""
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    hash_into(digest, path)
    return digest.hexdigest()


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
