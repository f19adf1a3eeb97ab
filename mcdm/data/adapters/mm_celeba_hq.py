"""Reader for Multi-Modal-CelebA-HQ: image, sketch and ten captions per name.

    image/<name>.jpg
    sketch/<name>.jpg                   dark strokes on white (optional directory)
    text/celeba-caption/<name>.txt      one caption per line
    train/filenames.pickle              the names of each split, a pickled list of str
    test/filenames.pickle
"""

import os
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from mcdm.data.adapters.base import FaceReader, OnError
from mcdm.data.adapters.files import find_file, read_captions, read_gray, read_rgb, resize_to
from mcdm.data.adapters.safe_pickle import read_filenames_pickle
from mcdm.data.sample import FaceSample

IMAGE_DIR = "image"
SKETCH_DIR = "sketch"
CAPTION_DIR = Path("text", "celeba-caption")
SketchPolarity = Literal["black_on_white", "white_on_black"]


def split_names_path(root: Path, split: str) -> Path:
    return root / split / "filenames.pickle"


class MMCelebAHQ(FaceReader):
    """One split of Multi-Modal-CelebA-HQ under ``root``: image, sketch (if ``sketch/`` exists) and captions.

    Sketches are returned in mcdm's convention (255 = stroke) at the image's size; ``sketch_polarity`` says
    how they are stored (the dataset's own are dark strokes on white). No masks: read them with
    ``CelebAMaskHQ`` by the same id.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: Literal["train", "test"] = "train",
        sketch_polarity: SketchPolarity = "black_on_white",
        on_error: OnError = "raise",
    ) -> None:
        super().__init__(on_error)
        if sketch_polarity not in ("black_on_white", "white_on_black"):
            raise ValueError(f"sketch_polarity must be 'black_on_white' or 'white_on_black', got {sketch_polarity!r}")
        self.root = Path(root)
        self.sketch_polarity = sketch_polarity
        self._names = read_filenames_pickle(split_names_path(self.root, split))
        self.has_sketches = (self.root / SKETCH_DIR).is_dir()

    @property
    def names(self) -> list[str]:
        return self._names

    def load(self, name: str) -> FaceSample:
        image = read_rgb(find_file(self.root / IMAGE_DIR, name))
        captions = read_captions(self.root / CAPTION_DIR / f"{name}.txt")
        sketch = None
        if self.has_sketches:
            path = find_file(self.root / SKETCH_DIR, name)
            sketch = resize_to(read_gray(path), image.shape[:2], Image.Resampling.BILINEAR, path)
            if self.sketch_polarity == "black_on_white":
                sketch = np.subtract(255, sketch, dtype=np.uint8)
        return FaceSample(image=image, mask=None, sketch=sketch, captions=captions, name=name)
