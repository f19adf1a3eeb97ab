"""What a held-out face gives each modality, whole or partial, and what a sample is then scored against.

An *input variant* turns a face into :class:`Targets`: the raw inputs handed to the modalities, and the
references the judges compare a sample with.

- ``full``: the whole sketch, the whole mask, the face's first caption.
- ``partial``: half of the mask unknown (one rectangle of half the image), half of the sketch's strokes
  erased, a caption stating one attribute. The mask figure is scored on the known half only; the edge
  figure against the face's *whole* sketch (how much of the face half the strokes recover); the attribute
  figure on the one stated attribute.
- ``upper face``: the sketch and mask of the upper face only (above the line between eyes and mouth), the
  whole caption. Mask and edge figures are scored in the upper face only.
- ``eyeglasses``: the whole sketch and mask, and for every face the one caption ``EYEGLASSES_CAPTION``: what
  negation (a negative text weight) is measured with, the eyeglasses rate being that caption's accuracy.

Variants are reproducible: each face's partial inputs come from a generator seeded by its index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from mcdm.data.captions import partial_caption
from mcdm.data.labels import UNKNOWN
from mcdm.data.partial import erase_strokes, random_box, upper_face_region
from mcdm.data.sample import FaceSample

SCORED_ATTRIBUTES = ("hair_color", "eyeglasses", "smiling", "hat", "beard")


@dataclass(frozen=True)
class Targets:
    """The raw inputs for the built-in modalities and the references a sample is scored against."""

    sketch: np.ndarray  # given to the sketch modality
    mask: np.ndarray  # given to the segmentation modality; UNKNOWN pixels are not scored
    caption: str  # given to the text modality; its stated attributes are scored
    edge_reference: np.ndarray  # the sketch a sample's edges are compared with
    edge_region: np.ndarray | None = None  # where edges are scored (None: everywhere)

    def raw(self, modality: str):
        """The raw input of a built-in modality, or of the joint oracle (all three in one mapping); else None."""
        parts = {"sketch": self.sketch, "segmentation": self.mask, "text": self.caption}
        return parts if modality == "joint" else parts.get(modality)


def full_inputs(face: FaceSample, rng: np.random.Generator) -> Targets:
    return Targets(face.sketch, face.mask, face.captions[0], edge_reference=face.sketch)


def partial_inputs(face: FaceSample, rng: np.random.Generator) -> Targets:
    mask = np.where(random_box(face.mask.shape, rng, area=(0.5, 0.5)), UNKNOWN, face.mask).astype(face.mask.dtype)
    sketch = erase_strokes(face.sketch, rng, fraction=0.5)
    caption = partial_caption(face.attributes, rng, k=1, among=SCORED_ATTRIBUTES)
    return Targets(sketch, mask, caption, edge_reference=face.sketch)


def upper_face_inputs(face: FaceSample, rng: np.random.Generator) -> Targets:
    upper = upper_face_region(face.mask)
    sketch = np.where(upper, face.sketch, 0).astype(face.sketch.dtype)
    mask = np.where(upper, face.mask, UNKNOWN).astype(face.mask.dtype)
    return Targets(sketch, mask, face.captions[0], edge_reference=face.sketch, edge_region=upper)


EYEGLASSES_CAPTION = "The person wears eyeglasses."


def eyeglasses_inputs(face: FaceSample, rng: np.random.Generator) -> Targets:
    return Targets(face.sketch, face.mask, EYEGLASSES_CAPTION, edge_reference=face.sketch)


INPUT_VARIANTS: dict[str, Callable[[FaceSample, np.random.Generator], Targets]] = {
    "full": full_inputs,
    "partial": partial_inputs,
    "upper face": upper_face_inputs,
    "eyeglasses": eyeglasses_inputs,
}


def targets_for(faces: list[FaceSample], variant: str, seed: int = 0) -> list[Targets]:
    if variant not in INPUT_VARIANTS:
        raise ValueError(f"unknown input variant {variant!r}; choose one of: {', '.join(INPUT_VARIANTS)}")
    return [INPUT_VARIANTS[variant](face, np.random.default_rng([seed, i])) for i, face in enumerate(faces)]
