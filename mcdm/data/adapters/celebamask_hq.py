"""Reader for CelebAMask-HQ: images and per-part masks combined into one label map.

    CelebA-HQ-img/<id>.jpg
    CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png     one binary mask per part present

Parts are combined as the official ``g_mask.py`` does: in ``PART_NAMES`` order, a later part overwriting an
earlier one. Masks (512 px) are resized to the image (1024 px) with nearest-neighbour sampling.
"""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from mcdm.data.adapters.base import FaceReader, OnError
from mcdm.data.adapters.files import IMAGE_EXTENSIONS, find_file, read_part_mask, read_rgb, resize_to
from mcdm.data.errors import DataError
from mcdm.data.labels import LABELS, PART_NAMES, remap_labels
from mcdm.data.sample import FaceSample

IMAGE_DIR = "CelebA-HQ-img"
MASK_DIR = "CelebAMask-HQ-mask-anno"
IDS_PER_MASK_FOLDER = 2000


def part_mask_path(root: Path, image_id: int, part: str) -> Path:
    return root / MASK_DIR / str(image_id // IDS_PER_MASK_FOLDER) / f"{image_id:05d}_{part}.png"


class CelebAMaskHQ(FaceReader):
    """CelebAMask-HQ under ``root``: image and mask per id; no sketch, no captions.

    ``ids`` picks samples (default: every image in ``CelebA-HQ-img``). ``label_order`` gives the ids of the
    returned masks: ``LABELS`` (the default, official) or e.g. ``BISENET_LABELS``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        ids: Sequence[int] | None = None,
        label_order: Sequence[str] = LABELS,
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(on_error)
        self.root = Path(root)
        if sorted(label_order) != sorted(LABELS):
            raise ValueError(f"label_order must name each of {LABELS} once, got {tuple(label_order)}")
        self.label_order = tuple(label_order)
        self._ids = list(ids) if ids is not None else _image_ids(self.root / IMAGE_DIR)

    @property
    def names(self) -> list[str]:
        return [str(i) for i in self._ids]

    def load(self, name: str) -> FaceSample:
        image_id = int(name)
        image = read_rgb(find_file(self.root / IMAGE_DIR, name))
        mask = np.zeros(image.shape[:2], dtype=np.uint8)
        found = 0
        for part in PART_NAMES:
            path = part_mask_path(self.root, image_id, part)
            if not path.is_file():
                continue  # parts a face does not have have no file
            part_mask = read_part_mask(path).astype(np.uint8)
            part_mask = resize_to(part_mask, mask.shape, Image.Resampling.NEAREST, path)
            mask[part_mask > 0] = LABELS.index(part)  # later parts overwrite earlier ones
            found += 1
        if not found:
            raise DataError(f"missing file {part_mask_path(self.root, image_id, 'skin')}: no mask part for id {image_id}")
        if self.label_order != LABELS:
            mask = remap_labels(mask, LABELS, self.label_order)
        return FaceSample(image=image, mask=mask, sketch=None, name=name)


def _image_ids(directory: Path) -> list[int]:
    if not directory.is_dir():
        raise DataError(f"missing directory {directory}")
    ids = []
    for path in directory.iterdir():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if not path.stem.isdigit():
            raise DataError(f"unexpected image {path}: CelebA-HQ images are named <id>.jpg")
        ids.append(int(path.stem))
    return sorted(ids)
