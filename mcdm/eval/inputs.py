"""What a held-out face gives each modality, whole or partial, and what a sample is then scored against.

An *input variant* turns a face into :class:`Targets`: the face parts handed to the modalities (each modality
declares the part its input is, ``Modality.face_part``), and the references the judges compare a sample with.

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
from typing import Callable, Iterable

import numpy as np

from mcdm.data.captions import partial_caption
from mcdm.data.labels import UNKNOWN
from mcdm.data.partial import erase_strokes, random_box, upper_face_region
from mcdm.data.sample import FaceSample
from mcdm.errors import ConfigError

SCORED_ATTRIBUTES = ("hair_color", "eyeglasses", "smiling", "hat", "beard")


@dataclass(frozen=True)
class Targets:
    """The face parts given to the modalities that declare them (``Modality.face_part``) and the references a
    sample is scored against."""

    sketch: np.ndarray  # the "sketch" part
    mask: np.ndarray  # the "mask" part; UNKNOWN pixels are not scored
    caption: str  # the "caption" part; its stated attributes are scored
    edge_reference: np.ndarray  # the sketch a sample's edges are compared with
    edge_region: np.ndarray | None = None  # where edges are scored (None: everywhere)

    def part(self, name: str):
        """The raw input of face part ``name``: "sketch", "mask" or "caption"."""
        parts = {"sketch": self.sketch, "mask": self.mask, "caption": self.caption}
        if name not in parts:
            raise ConfigError(f"unknown face part {name!r}; a face gives {', '.join(parts)}")
        return parts[name]


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


def face_parts(plugins, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The face parts each named modality is given in the evaluation, from what its class declares: its
    ``face_part``, or those of the modalities it ``combines``; () for one that reads faces otherwise."""
    def parts(name: str) -> tuple[str, ...]:
        modality = plugins.modality(name)
        if modality.combines:
            return tuple(part for combined in modality.combines for part in parts(combined))
        return () if modality.face_part is None else (modality.face_part,)

    return {name: parts(name) for name in names}


def targets_for(faces: list[FaceSample], variant: str, seed: int = 0) -> list[Targets]:
    if variant not in INPUT_VARIANTS:
        raise ValueError(f"unknown input variant {variant!r}; choose one of: {', '.join(INPUT_VARIANTS)}")
    return [INPUT_VARIANTS[variant](face, np.random.default_rng([seed, i])) for i, face in enumerate(faces)]
