"""``synthfaces``: the built-in procedural face dataset, every modality computed from one attribute record.

Sample ``i`` of ``SynthFaces(size, seed, split)`` is a pure function of ``(seed, split, i)``: its attributes
and captions come from their own random streams seeded by that triple, so samples can be made in any order,
in any process, and a face is the same face at every size. The train and test splits use different
streams, so they never share a sample.
"""

from collections.abc import Sequence
from typing import Literal

import numpy as np

from mcdm.data.attributes import FaceAttributes, sample_attributes
from mcdm.data.captions import CAPTIONS_PER_SAMPLE, captions_for
from mcdm.data.render import MAX_SIZE, MIN_SIZE, render_face
from mcdm.data.sample import FaceSample
from mcdm.data.sketch import sketch_from_image
from mcdm.data.variants import apply_variant, check_variant

__all__ = ["FaceAttributes", "FaceSample", "SynthFaces", "render_face", "sample_attributes", "sample_rng"]

DATASET_VERSION = 1
"""Bump whenever rendering or captions change: caches are keyed by it."""

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")
_ATTRIBUTE_STREAM, _CAPTION_STREAM, _VARIANT_STREAM = 0, 1, 2


def sample_rng(seed: int, split: Split, index: int, stream: int) -> np.random.Generator:
    """The random stream ``stream`` of sample ``index``; different splits never share a stream."""
    return np.random.default_rng([seed, SPLITS.index(split), index, stream])


class SynthFaces(Sequence[FaceSample]):
    """``length`` synthetic faces of ``size`` x ``size`` pixels (32 to 256), each with mask, sketch and captions."""

    def __init__(
        self,
        size: int = 32,
        seed: int = 0,
        split: Split = "train",
        length: int = 10_000,
        n_captions: int = CAPTIONS_PER_SAMPLE,
        variant: str = "default",
    ) -> None:
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"SynthFaces: size must be {MIN_SIZE}..{MAX_SIZE}, got {size}")
        if split not in SPLITS:
            raise ValueError(f"SynthFaces: split must be one of {SPLITS}, got {split!r}")
        if seed < 0 or length < 0 or n_captions < 0:
            raise ValueError(f"SynthFaces: seed, length, n_captions must be >= 0, got {seed}, {length}, {n_captions}")
        check_variant(variant)
        self.size, self.seed, self.split, self.length, self.n_captions = size, seed, split, length, n_captions
        self.variant = variant

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> FaceSample:  # type: ignore[override]  # no slices: one return type
        if not -self.length <= index < self.length:
            raise IndexError(f"SynthFaces index {index} out of range for length {self.length}")
        index %= self.length
        attributes = self.attributes(index)
        image, mask = render_face(attributes, self.size)
        captions = captions_for(attributes, sample_rng(self.seed, self.split, index, _CAPTION_STREAM), self.n_captions)
        return FaceSample(
            image=image,
            mask=mask,
            sketch=sketch_from_image(image),
            attributes=attributes,
            captions=captions,
            name=f"synthfaces{'' if self.variant == 'default' else '-' + self.variant}/{self.split}/{index}",
        )

    def attributes(self, index: int) -> FaceAttributes:
        """The attribute record of sample ``index`` (cheap: nothing is rendered)."""
        attributes = sample_attributes(sample_rng(self.seed, self.split, index, _ATTRIBUTE_STREAM))
        return apply_variant(attributes, self.variant, sample_rng(self.seed, self.split, index, _VARIANT_STREAM))

    def __repr__(self) -> str:
        variant = "" if self.variant == "default" else f", variant={self.variant!r}"
        return f"SynthFaces(size={self.size}, seed={self.seed}, split={self.split!r}, length={self.length}{variant})"
