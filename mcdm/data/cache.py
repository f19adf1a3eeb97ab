"""A synthfaces split rendered once to numpy files, then memory-mapped on every later use.

One directory per (version, size, n, seed, split, variant) under ``cache_dir``:

    images.npy      N x S x S x 3 uint8
    masks.npy       N x S x S uint8 (LABELS ids)
    sketches.npy    N x S x S uint8 (255 = edge)
    attributes.npy  N records of ATTRIBUTE_DTYPE
    captions.json   N lists of captions
"""

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from mcdm.atomic import atomic_folder
from mcdm.data.attributes import ATTRIBUTE_DTYPE, attributes_to_records, record_to_attributes
from mcdm.data.parallel import Chunk, chunks, map_chunks
from mcdm.data.sample import FaceSample
from mcdm.data.synthfaces import DATASET_VERSION, Split, SynthFaces

_ARRAYS = ("images", "masks", "sketches", "attributes")


@dataclass(frozen=True)
class SynthCache(Sequence[FaceSample]):
    """The cached arrays (memory-mapped, read-only) and captions of one split."""

    images: np.ndarray
    masks: np.ndarray
    sketches: np.ndarray
    attributes: np.ndarray
    captions: list[list[str]]
    path: Path

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> FaceSample:  # type: ignore[override]
        return FaceSample(
            image=np.asarray(self.images[index]),
            mask=np.asarray(self.masks[index]),
            sketch=np.asarray(self.sketches[index]),
            attributes=record_to_attributes(self.attributes[index]),
            captions=list(self.captions[index]),
            name=f"{self.path.name}/{index % len(self)}",
        )


def default_cache_dir() -> Path:
    return Path(os.environ.get("MCDM_CACHE_DIR", "~/.cache/mcdm")).expanduser() / "synthfaces"


def load_or_build_cache(
    size: int,
    n: int,
    seed: int,
    split: Split,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    variant: str = "default",
    workers: int | None = None,
    progress: bool = True,
) -> SynthCache:
    """Memory-map the cache of ``SynthFaces(size, seed, split, length=n)``, building it first if missing.

    Building renders in ``workers`` processes (default: all usable cores) and writes atomically, so an
    interrupted build leaves nothing behind and a finished cache is never partial.
    """
    faces = SynthFaces(size=size, seed=seed, split=split, length=n, variant=variant)  # validates the arguments
    if n < 1:
        raise ValueError(f"load_or_build_cache: n must be at least 1, got {n}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / f"v{DATASET_VERSION}-size{size}-n{n}-seed{seed}-{split}{'' if variant == 'default' else '-' + variant}"
    if not (path / "captions.json").exists():
        try:
            with atomic_folder(path, replace=False) as tmp:
                _build(faces, tmp, workers, progress)
        except FileExistsError:
            pass  # another process finished the same cache first; theirs is identical
    arrays = {name: np.load(path / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
    captions = json.loads((path / "captions.json").read_text(encoding="utf-8"))
    return SynthCache(**arrays, captions=captions, path=path)


def _render_chunk(faces: SynthFaces, chunk: Chunk) -> tuple[list[np.ndarray], list[list[str]]]:
    """The arrays of the samples in ``chunk`` (in ``_ARRAYS`` order) and their captions."""
    samples = [faces[i] for i in range(*chunk)]
    arrays = [
        np.stack([s.image for s in samples]),
        np.stack([s.mask for s in samples]),  # type: ignore[misc]
        np.stack([s.sketch for s in samples]),  # type: ignore[misc]
        attributes_to_records([s.attributes for s in samples]),  # type: ignore[misc]
    ]
    return arrays, [s.captions for s in samples]


def _build(faces: SynthFaces, out: Path, workers: int | None, progress: bool) -> None:
    n, s = len(faces), faces.size
    shapes = {"images": (n, s, s, 3), "masks": (n, s, s), "sketches": (n, s, s), "attributes": (n,)}
    files = {
        name: np.lib.format.open_memmap(
            out / f"{name}.npy", mode="w+", dtype=ATTRIBUTE_DTYPE if name == "attributes" else np.uint8, shape=shape
        )
        for name, shape in shapes.items()
    }
    captions: list[list[str]] = []
    work = chunks(n, 256)
    results = map_chunks(partial(_render_chunk, faces), work, workers, progress, f"synthfaces {faces.split} {s}px")
    for (start, stop), (arrays, chunk_captions) in zip(work, results):
        for name, array in zip(_ARRAYS, arrays):
            files[name][start:stop] = array
        captions.extend(chunk_captions)
    for array in files.values():
        array.flush()
    del files  # close the maps before the directory is renamed into place
    (out / "captions.json").write_text(json.dumps(captions), encoding="utf-8")
