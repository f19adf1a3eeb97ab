"""Latent space: the VAE (a diffusers ``AutoencoderKL`` folder) whose latents the sampler runs in.

A latent model's ``mcdm.json`` says ``"space": "latent"`` and names its VAE folder (``"vae": "vae"``). Two models
compose only in one space: pixel with pixel, or latents of the same VAE, the same config and weights
(:func:`vae_id`). Conditions are prepared at image resolution (the denoiser type says whether it reads them there
or at latent size), per-pixel weights are area-pooled to the latent grid (:func:`pool_weights`), and the latents
are decoded once, at the end (:meth:`LatentSpace.decode`). Training encodes the images (:meth:`LatentSpace.encode`,
the inverse of decode's scaling), each batch's or, once, a cached training set's (mcdm.latent_cache).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from mcdm.errors import CheckpointError, IncompatibleModelsError
from mcdm.readers import DIFFUSERS_WEIGHTS, read_json_object, safetensors_weights

TILE_ABOVE = 2  # decode in tiles when the image is more than this many times the VAE's own sample size


def vae_id(folder: str | os.PathLike) -> str:
    """A VAE's identity: SHA-256 of its config and weights (12 hex digits), the same wherever it lies.

    The config's own bookkeeping keys (``_class_name``, ``_diffusers_version``, ``_name_or_path``: "_"-prefixed)
    are left out, so a copy saved by another diffusers version is the same VAE; every other key (the scaling
    factor, the architecture) changes what the latents are."""
    folder = Path(folder)
    files = safetensors_weights(folder, DIFFUSERS_WEIGHTS, CheckpointError)
    config = read_json_object(folder / "config.json", CheckpointError)
    described = {key: value for key, value in config.items() if not key.startswith("_")}
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode())
    for path in files:
        stat = path.stat()
        digest.update(_file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns).encode())
    return digest.hexdigest()[:12]


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, remembered while its size and modification time stay the same (SD's VAE is 335 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class LatentSpace:
    """A loaded VAE: ``decode`` turns the sampler's latents into images in [-1, 1]."""

    folder: Path
    id: str
    vae: torch.nn.Module

    @property
    def scale(self) -> int:
        """Image pixels per latent pixel along each side."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def channels(self) -> int:
        """Channels of one latent."""
        return int(self.vae.config.latent_channels)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] as the latents a denoiser trains on: the posterior's mean, scaled as decode unscales.

        The mean, not a sample: a latent is then a function of its image alone, so a resumed run sees the batches
        the uninterrupted one saw, and the denoiser learns the latents the decoder reconstructs best (a trained
        KL-VAE's posterior spread is small beside the diffusion noise). The whole batch at once, never in tiles.
        """
        config = self.vae.config
        self.vae.disable_slicing()
        self.vae.disable_tiling()  # decode may have turned it on, and a tiled encoding differs from a whole one
        parameter = next(self.vae.parameters())
        with torch.no_grad():  # not inference_mode: the latents enter the training step's autograd graph
            mean = self.vae.encode(images.to(parameter.device, parameter.dtype)).latent_dist.mean
        latents = (mean.float() - (getattr(config, "shift_factor", None) or 0.0)) * config.scaling_factor
        # The encoder may leave them channels-last; the denoiser's kernels then sum in another order than on the
        # same values in the usual layout, as mcdm.latent_cache stores them.
        return latents.contiguous()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """One decode of the final latents, in the VAE's dtype; one image at a time, and in tiles when large."""
        config = self.vae.config
        z = latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
        self.vae.enable_slicing()
        if latents.shape[-1] * self.scale > TILE_ABOVE * int(config.sample_size):
            self.vae.enable_tiling()
        else:
            self.vae.disable_tiling()
        parameter = next(self.vae.parameters())
        with torch.inference_mode():
            return self.vae.decode(z.to(parameter.device, parameter.dtype)).sample.float()


def load_vae(folder: str | os.PathLike, dtype: torch.dtype = torch.float32) -> LatentSpace:
    """An ``AutoencoderKL`` folder, safetensors only (a pickle file in it is refused before diffusers opens it)."""
    from diffusers import AutoencoderKL

    folder = Path(folder)
    identity = vae_id(folder)
    kind = read_json_object(folder / "config.json", CheckpointError).get("_class_name")
    if kind != "AutoencoderKL":
        raise CheckpointError(f"{str(folder)!r} holds a {kind}, not an AutoencoderKL VAE")
    try:
        vae = AutoencoderKL.from_pretrained(folder, use_safetensors=True, torch_dtype=dtype)
    except Exception as exc:  # diffusers' own message, as one line naming the folder
        raise CheckpointError(f"cannot load the VAE in {str(folder)!r}: {str(exc).strip().splitlines()[0]}") from exc
    return LatentSpace(folder=folder, id=identity, vae=vae.eval().requires_grad_(False))


def latent_space(prior, vae: LatentSpace | None, dtype: torch.dtype) -> LatentSpace | None:
    """The space a composition samples in: None for pixels, else the given VAE or the prior's own.

    A VAE given for a pixel prior, or one that is not the prior's, is refused naming both.
    """
    if prior.vae_folder is None:
        if vae is not None:
            raise IncompatibleModelsError(f"cannot compose the VAE {str(vae.folder)!r} with {prior.name!r}: the "
                                          "prior works in pixel space")
        return None
    if vae is None:
        return load_vae(prior.vae_folder, dtype)
    own = vae_id(prior.vae_folder)
    if vae.id != own:
        raise IncompatibleModelsError(f"cannot compose the VAE {str(vae.folder)!r} and {prior.name!r}: different "
                                      f"VAEs (latent:{vae.id} vs latent:{own})")
    return vae


def pool_weights(weights: torch.Tensor, size: int) -> torch.Tensor:
    """Per-pixel weights (B, 1, H, W) brought to the sampler's (size, size) grid by area pooling (unchanged at size)."""
    if weights.shape[-2:] == (size, size):
        return weights
    return torch.nn.functional.adaptive_avg_pool2d(weights, size)
