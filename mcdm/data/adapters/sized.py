"""A reader's faces at the size a model trains at.

Only the image (what the model learns to draw) is resized, by area averaging. The conditions stay as read:
each modality's ``prepare`` brings its own input to the model's size in its own way (nearest for label maps,
edge-preserving for sketches), so thin strokes of a 1024-pixel sketch are not averaged away here.
"""

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from mcdm.data.errors import DataError
from mcdm.data.sample import FaceSample


class AtSize(Sequence[FaceSample]):
    def __init__(self, faces: Sequence[FaceSample], size: int) -> None:
        self.faces = faces
        self.size = size

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, index: int) -> FaceSample:  # type: ignore[override]
        sample = self.faces[index]
        height, width = sample.image.shape[:2]
        if height != width:
            raise DataError(f"{sample.name}: the image is {width}x{height}; training needs square faces")
        if height == self.size:
            return sample
        image = np.asarray(Image.fromarray(sample.image).resize((self.size, self.size), Image.Resampling.BOX))
        return replace(sample, image=image)
