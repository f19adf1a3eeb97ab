"""Reader for a user's own faces: one folder per modality, files matched by stem.

    images/<stem>.png|jpg       required: the stems come from here
    masks/<stem>.png            label ids 0..18 in one channel (CelebAMask-HQ order; see ``remap_labels``)
    sketches/<stem>.png|jpg     white strokes on black (or set ``sketch_polarity``)
    captions/<stem>.txt         one caption per line
"""

import os
from collections.abc import Collection
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from mcdm.data.adapters.base import FaceReader, OnError
from mcdm.data.adapters.files import (
    IMAGE_EXTENSIONS,
    find_file,
    read_captions,
    read_gray,
    read_label_map,
    read_rgb,
    resize_to,
)
from mcdm.data.adapters.mm_celeba_hq import SketchPolarity
from mcdm.data.errors import DataError
from mcdm.data.sample import FaceSample

Modality = Literal["mask", "sketch", "caption"]
IMAGE_DIR, MASK_DIR, SKETCH_DIR, CAPTION_DIR = "images", "masks", "sketches", "captions"


class FolderFaces(FaceReader):
    """Faces under ``root`` in the folder layout above. A stem may lack a mask, sketch or caption file
    (that modality is then ``None`` or ``[]``) unless the modality is listed in ``require``."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        require: Collection[Modality] = (),
        sketch_polarity: SketchPolarity = "white_on_black",
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(on_error)
        unknown = set(require) - {"mask", "sketch", "caption"}
        if unknown:
            raise ValueError(f"require may name 'mask', 'sketch' and 'caption', got {sorted(unknown)}")
        self.root = Path(root)
        self.require = frozenset(require)
        self.sketch_polarity = sketch_polarity
        self._names = _stems(self.root / IMAGE_DIR)

    @property
    def names(self) -> list[str]:
        return self._names

    def load(self, name: str) -> FaceSample:
        image = read_rgb(find_file(self.root / IMAGE_DIR, name))
        size = image.shape[:2]
        mask = sketch = None
        captions: list[str] = []
        mask_path = self._optional(MASK_DIR, name, (".png",), "mask")
        if mask_path:
            mask = resize_to(read_label_map(mask_path), size, Image.Resampling.NEAREST, mask_path)
        sketch_path = self._optional(SKETCH_DIR, name, IMAGE_EXTENSIONS, "sketch")
        if sketch_path:
            sketch = resize_to(read_gray(sketch_path), size, Image.Resampling.BILINEAR, sketch_path)
            if self.sketch_polarity == "black_on_white":
                sketch = np.subtract(255, sketch, dtype=np.uint8)
        caption_path = self._optional(CAPTION_DIR, name, (".txt",), "caption")
        if caption_path:
            captions = read_captions(caption_path)
        return FaceSample(image=image, mask=mask, sketch=sketch, captions=captions, name=name)

    def _optional(self, folder: str, name: str, extensions: tuple[str, ...], modality: Modality) -> Path | None:
        try:
            return find_file(self.root / folder, name, extensions)
        except DataError:
            if modality in self.require:
                raise
            return None


def _stems(directory: Path) -> list[str]:
    if not directory.is_dir():
        raise DataError(f"missing directory {directory}")
    stems: dict[str, Path] = {}
    for path in directory.iterdir():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if path.stem in stems:
            raise DataError(f"two images for one stem: {stems[path.stem]} and {path}")
        stems[path.stem] = path
    # numeric stems in numeric order (2 before 10), then the rest alphabetically
    return sorted(stems, key=lambda s: (0, int(s), "") if s.isdigit() else (1, 0, s))
