"""Writing synthfaces to disk in the real datasets' layouts, so one set of readers serves both.

``layout="celeba"`` writes one tree that is at once a CelebAMask-HQ and a Multi-Modal-CelebA-HQ root
(read it with ``CelebAMaskHQ`` and ``MMCelebAHQ``); ``layout="folder"`` writes ``train/`` and ``test/`` in
the plain folder layout (``FolderFaces``). Either way ``synthfaces.json`` records how the set was made and
every sample's attributes. Ids ``0 .. n_train-1`` are train samples, the rest test samples.
"""

import json
import os
import pickle
import shutil
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from mcdm.data.adapters import celebamask_hq, folder, mm_celeba_hq
from mcdm.atomic import atomic_folder
from mcdm.data.labels import LABELS
from mcdm.data.parallel import Chunk, chunks, map_chunks
from mcdm.data.render import MAX_SIZE, MIN_SIZE
from mcdm.data.sample import FaceSample
from mcdm.data.synthfaces import DATASET_VERSION, SPLITS, Split, SynthFaces
from mcdm.data.variants import check_variant

Layout = Literal["celeba", "folder"]
ImageFormat = Literal["png", "jpg"]
JPEG_QUALITY = 95
METADATA_FILE = "synthfaces.json"


@dataclass(frozen=True)
class _Job:
    out: Path
    size: int
    seed: int
    n_train: int
    n_test: int
    layout: Layout
    image_format: ImageFormat
    variant: str = "default"

    def sample(self, image_id: int) -> tuple[Split, int]:
        """(split, index in that split) of a dataset id."""
        return ("train", image_id) if image_id < self.n_train else ("test", image_id - self.n_train)

    def split_length(self, split: Split) -> int:
        return self.n_train if split == "train" else self.n_test


def write_synthfaces(
    out_dir: str | os.PathLike[str],
    n: int,
    size: int,
    seed: int = 0,
    *,
    layout: Layout = "celeba",
    image_format: ImageFormat = "png",
    test_fraction: float = 0.1,
    workers: int | None = None,
    progress: bool = True,
    variant: str = "default",
) -> Path:
    """Write ``n`` synthetic faces of ``size`` pixels to ``out_dir`` (which must not exist, or be empty).

    ``image_format="png"`` keeps every modality exact; ``"jpg"`` (quality 95) mimics the real files.
    ``variant`` draws the faces from another distribution (``mcdm.data.variants``).
    The dataset appears all at once: it is built in a temporary directory next to ``out_dir`` and renamed.
    """
    out = Path(out_dir)
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be {MIN_SIZE}..{MAX_SIZE}, got {size}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if layout not in ("celeba", "folder"):
        raise ValueError(f"layout must be 'celeba' or 'folder', got {layout!r}")
    if image_format not in ("png", "jpg"):
        raise ValueError(f"image_format must be 'png' or 'jpg', got {image_format!r}")
    check_variant(variant)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty directory")

    n_test = int(round(n * test_fraction))
    with atomic_folder(out, replace=False) as tmp:
        job = _Job(tmp, size, seed, n - n_test, n_test, layout, image_format, variant)
        attributes: dict[str, Any] = {}
        for written in map_chunks(partial(_write_chunk, job), chunks(n, 64), workers, progress, "writing synthfaces"):
            attributes.update(written)
        ids = {"train": list(range(job.n_train)), "test": list(range(job.n_train, n))}
        if layout == "celeba":
            for split in SPLITS:
                path = mm_celeba_hq.split_names_path(tmp, split)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(pickle.dumps([str(i) for i in ids[split]], protocol=2))
        metadata = {
            "dataset": "synthfaces", "version": DATASET_VERSION, "variant": variant, "size": size, "seed": seed,
            "layout": layout,
            "image_format": image_format, "ids": ids, "attributes": attributes,
        }  # fmt: skip
        (tmp / METADATA_FILE).write_text(json.dumps(metadata), encoding="utf-8")
    return out


def _write_chunk(job: _Job, chunk: Chunk) -> dict[str, Any]:
    """Render and write the samples of ``chunk``; return their attributes by id."""
    faces = {split: SynthFaces(job.size, job.seed, split, job.split_length(split), variant=job.variant)
             for split in SPLITS}
    written = {}
    for image_id in range(*chunk):
        split, index = job.sample(image_id)
        sample = faces[split][index]
        assert sample.attributes is not None  # synthfaces samples carry their record
        if job.layout == "celeba":
            _write_celeba(job.out, job.image_format, image_id, sample)
        else:
            _write_folder(job.out / split, job.image_format, str(image_id), sample)
        written[str(image_id)] = {"split": split, "index": index, **sample.attributes.to_dict()}
    return written


def _save(array: np.ndarray, path: Path, image_format: ImageFormat) -> Path:
    path = path.with_suffix(f".{image_format}")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **({"quality": JPEG_QUALITY} if image_format == "jpg" else {}))
    return path


def _write_captions(path: Path, captions: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(captions) + "\n", encoding="utf-8")


def _write_celeba(root: Path, image_format: ImageFormat, image_id: int, sample: FaceSample) -> None:
    assert sample.mask is not None and sample.sketch is not None  # synthfaces samples have every modality
    stem = str(image_id)
    image_path = _save(sample.image, root / celebamask_hq.IMAGE_DIR / stem, image_format)
    mm_image = (root / mm_celeba_hq.IMAGE_DIR / stem).with_suffix(image_path.suffix)
    mm_image.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(image_path, mm_image)  # the same bytes in both layouts, stored once where possible
    except OSError:
        shutil.copyfile(image_path, mm_image)
    for label in np.unique(sample.mask):
        if label != 0:  # CelebAMask-HQ has no background file
            part_mask = np.where(sample.mask == label, 255, 0).astype(np.uint8)
            _save(part_mask, celebamask_hq.part_mask_path(root, image_id, LABELS[label]), "png")
    _save(255 - sample.sketch, root / mm_celeba_hq.SKETCH_DIR / stem, image_format)  # dark strokes on white
    _write_captions(root / mm_celeba_hq.CAPTION_DIR / f"{stem}.txt", sample.captions)


def _write_folder(root: Path, image_format: ImageFormat, stem: str, sample: FaceSample) -> None:
    assert sample.mask is not None and sample.sketch is not None
    _save(sample.image, root / folder.IMAGE_DIR / stem, image_format)
    _save(sample.mask, root / folder.MASK_DIR / stem, "png")
    _save(sample.sketch, root / folder.SKETCH_DIR / stem, image_format)
    _write_captions(root / folder.CAPTION_DIR / f"{stem}.txt", sample.captions)
