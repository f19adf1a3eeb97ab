"""A training set's latents, encoded once by a frozen VAE and memory-mapped by every later run on it.

A denoiser trained on a VAE's latents (``mcdm train denoiser ... vae=``) would otherwise encode each batch at each
step, which costs about as much as the denoiser's own step. The latents of a synthfaces cache (mcdm.data.cache)
lie in it, one folder per VAE identity (:func:`mcdm.latent.vae_id`), shared by every run on that VAE and data:

    <dataset cache>/latents-<vae id>/latents.npy    N x C x S/scale x S/scale float32

Each row is what :meth:`LatentSpace.encode` gives its image (the posterior mean, shifted and scaled), computed
in batches of ``ENCODE_BATCH``; a VAE whose weights or config changed has another identity, so another
folder, and never reads these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mcdm.atomic import atomic_folder, remove_orphans
from mcdm.data.cache import SynthCache
from mcdm.errors import ConfigError
from mcdm.latent import LatentSpace
from mcdm.pixels import to_model_range

LATENTS = "latents.npy"
ENCODE_BATCH = 32  # images per encoder call while building, as many as a default training batch encodes


def latents_folder(cache: SynthCache, latent: LatentSpace) -> Path:
    """Where the latents of ``cache`` under ``latent``'s VAE are kept."""
    return cache.path / f"latents-{latent.id}"


def load_or_build_latents(cache: SynthCache, latent: LatentSpace, *, batch_size: int | None = None,
                          progress: bool = True) -> np.ndarray:
    """Memory-map the latents of every image in ``cache`` (read-only), encoding them first, ``batch_size`` images
    (default ``ENCODE_BATCH``) per encoder call, if missing.

    The build writes atomically: an interrupted one leaves nothing, and of two runs building at once the first to
    finish is kept (both encoded the same images with the same VAE).
    """
    batch_size = ENCODE_BATCH if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"load_or_build_latents: batch_size must be at least 1, got {batch_size}")
    folder = latents_folder(cache, latent)
    if not (folder / LATENTS).exists():
        remove_orphans(cache.path)  # what builds killed mid-write left (about 820 MB at 50,000 64x64 faces)
        try:
            with atomic_folder(folder, replace=False) as tmp:
                _encode_all(cache, latent, tmp / LATENTS, batch_size, progress)
        except FileExistsError:
            pass  # another run finished the same latents first
    try:
        latents = np.load(folder / LATENTS, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # not a plain numeric array (an object array would need pickle)
        raise ConfigError(f"{str(folder / LATENTS)!r} is not a latents array ({exc}); delete the folder to "
                          "encode it again") from exc
    expected = _shape(cache, latent)
    if latents.shape != expected or latents.dtype != np.float32:
        raise ConfigError(f"{str(folder / LATENTS)!r} holds {latents.dtype} {latents.shape}, not the float32 "
                          f"{expected} the VAE gives these {len(cache)} faces; delete the folder to encode it again")
    return latents


def _shape(cache: SynthCache, latent: LatentSpace) -> tuple[int, int, int, int]:
    side = cache.images.shape[1] // latent.scale
    return len(cache), latent.channels, side, side


def _encode_all(cache: SynthCache, latent: LatentSpace, path: Path, batch_size: int, progress: bool) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=_shape(cache, latent))
    with tqdm(total=len(cache), desc=f"latents {cache.path.name} latent:{latent.id}", unit="face",
              disable=not progress) as bar:
        for start in range(0, len(cache), batch_size):
            stop = min(start + batch_size, len(cache))
            images = to_model_range(np.array(cache.images[start:stop]))  # a copy: torch reads no read-only map
            out[start:stop] = latent.encode(images).cpu().numpy()
            bar.update(stop - start)
    out.flush()
    del out  # close the map before the folder is renamed into place
