"""Synthfaces variants: the same faces drawn from other distributions, for composing models trained apart.

A variant rewrites some fields of each face's attribute record (with its own random stream), so captions,
masks and sketches stay consistent with the image:

- ``default``: the dataset as it is.
- ``dark-hair``: only black or brown hair, nobody wears eyeglasses, pale plain backgrounds, soft light.
- ``studio``: every hair colour and eyeglasses as usual, strong directional light, dark saturated backgrounds.

A model trained on ``dark-hair`` never saw blond hair or eyeglasses; one trained on ``studio`` never saw a
pale background: composing them tests whether each keeps what only it knows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from mcdm.data.attributes import HAIR_RGB, FaceAttributes, jitter_rgb

DARK_HAIR = ("black", "brown")


def _dark_hair(a: FaceAttributes, rng: np.random.Generator) -> FaceAttributes:
    hair = DARK_HAIR[rng.integers(len(DARK_HAIR))]
    grey = int(rng.integers(190, 236))
    background = jitter_rgb(rng, (grey, grey, grey), 8)
    return replace(a, hair_color=hair, hair_rgb=jitter_rgb(rng, HAIR_RGB[hair], 12), eyeglasses=False,
                   background_top=background, background_bottom=background,
                   light_strength=float(rng.uniform(0.0, 0.1)))


def _studio(a: FaceAttributes, rng: np.random.Generator) -> FaceAttributes:
    def dark_colour():
        colour = rng.integers(0, 256, size=3).astype(float)
        return tuple(int(c) for c in colour * rng.uniform(40, 90) / max(colour.max(), 1.0))

    return replace(a, background_top=dark_colour(), background_bottom=dark_colour(),
                   light_strength=float(rng.uniform(0.35, 0.6)))


VARIANTS: dict[str, Callable[[FaceAttributes, np.random.Generator], FaceAttributes] | None] = {
    "default": None,
    "dark-hair": _dark_hair,
    "studio": _studio,
}


def check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown synthfaces variant {variant!r}; choose one of: {', '.join(VARIANTS)}")


def apply_variant(attributes: FaceAttributes, variant: str, rng: np.random.Generator) -> FaceAttributes:
    check_variant(variant)
    change = VARIANTS[variant]
    return attributes if change is None else change(attributes, rng)
