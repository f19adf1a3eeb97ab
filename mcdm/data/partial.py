"""Partial inputs: masks with parts or regions unknown, sketches with strokes erased.

These make the incomplete conditions users give (and that composition is for). Masks mark what is not
known with ``UNKNOWN``, never with background; sketches simply lose strokes (0). Each function takes an
explicit ``np.random.Generator`` and returns a new array, so a partial input is reproducible from its seed.
"""

from collections.abc import Collection

import cv2
import numpy as np

from mcdm.data.labels import LABELS, PART_NAMES, UNKNOWN, check_mask

_UPPER = tuple(LABELS.index(n) for n in ("eye_g", "l_eye", "r_eye", "l_brow", "r_brow"))
_LOWER = tuple(LABELS.index(n) for n in ("mouth", "u_lip", "l_lip"))


def drop_mask_parts(
    mask: np.ndarray, rng: np.random.Generator, p: float = 0.5, droppable: Collection[str] = PART_NAMES
) -> np.ndarray:
    """Mark each part of ``droppable`` present in ``mask`` as ``UNKNOWN`` with probability ``p``."""
    check_mask(mask, allow_unknown=True)
    unknown_names = set(droppable) - set(LABELS)
    if unknown_names:
        raise ValueError(f"drop_mask_parts: unknown part names {sorted(unknown_names)}")
    ids = [LABELS.index(n) for n in LABELS if n in droppable]  # fixed order: reproducible draws
    present = [i for i in ids if (mask == i).any()]
    dropped = [i for i, u in zip(present, rng.random(len(present))) if u < p]
    return np.where(np.isin(mask, dropped), UNKNOWN, mask).astype(mask.dtype)


def random_box(shape: tuple[int, int], rng: np.random.Generator, area: tuple[float, float]) -> np.ndarray:
    """A boolean HxW map of one random axis-aligned rectangle covering ``area`` (min, max) of the image."""
    h, w = shape
    fraction = rng.uniform(*area)
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    bh = int(round(np.clip(np.sqrt(fraction * h * w / aspect), 1, h)))
    bw = int(round(np.clip(fraction * h * w / bh, 1, w)))
    top, left = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
    box = np.zeros(shape, dtype=bool)
    box[top : top + bh, left : left + bw] = True
    return box


def unknown_region(mask: np.ndarray, rng: np.random.Generator, area: tuple[float, float] = (0.1, 0.5)) -> np.ndarray:
    """Mark a random rectangle covering ``area`` of the mask as ``UNKNOWN``."""
    check_mask(mask, allow_unknown=True)
    return np.where(random_box(mask.shape, rng, area), UNKNOWN, mask).astype(mask.dtype)


def erase_region(sketch: np.ndarray, rng: np.random.Generator, area: tuple[float, float] = (0.1, 0.5)) -> np.ndarray:
    """Erase every stroke inside a random rectangle covering ``area`` of the sketch."""
    _check_sketch(sketch)
    return np.where(random_box(sketch.shape, rng, area), 0, sketch).astype(sketch.dtype)


def erase_strokes(sketch: np.ndarray, rng: np.random.Generator, fraction: float = 0.5, cells: int = 8) -> np.ndarray:
    """Erase random whole strokes until at least ``fraction`` of the edge pixels are gone.

    A stroke is a connected run of edge pixels within one cell of a ``cells`` x ``cells`` grid: Canny
    outlines of a face are mostly one connected curve, so the grid cuts them into pieces a user might draw.
    """
    _check_sketch(sketch)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"erase_strokes: fraction must be in [0, 1], got {fraction}")
    h, w = sketch.shape
    edges = sketch > 0
    _, components = cv2.connectedComponents(edges.astype(np.uint8), connectivity=8)
    cell = (np.arange(h)[:, None] * cells // h) * cells + np.arange(w)[None, :] * cells // w
    stroke = np.where(edges, components.astype(np.int64) * cells * cells + cell, -1)
    ids, sizes = np.unique(stroke[edges], return_counts=True)
    order = rng.permutation(len(ids))
    # the fewest strokes, in this random order, that reach the fraction
    enough = int(np.searchsorted(np.cumsum(sizes[order]), fraction * edges.sum())) + 1 if fraction > 0 else 0
    erased = ids[order[:enough]]
    return np.where(np.isin(stroke, erased), 0, sketch).astype(sketch.dtype)


def upper_face_region(mask: np.ndarray) -> np.ndarray:
    """Boolean HxW map of the upper face: everything above a line halfway between the eyes and the mouth.

    The line is perpendicular to the eyes-to-mouth direction, so it follows a tilted head. Needs a mask that
    shows eyes (or eyeglasses or brows) and a mouth (or lips); otherwise a ValueError says what is missing.
    """
    check_mask(mask, allow_unknown=True)
    upper, lower = np.argwhere(np.isin(mask, _UPPER)), np.argwhere(np.isin(mask, _LOWER))
    if len(upper) == 0 or len(lower) == 0:
        missing = "eyes, eyeglasses or brows" if len(upper) == 0 else "mouth or lips"
        raise ValueError(f"upper_face_region: the mask shows no {missing}, so the upper face is undefined")
    top, bottom = upper.mean(axis=0), lower.mean(axis=0)
    axis = bottom - top
    rows, cols = np.indices(mask.shape)
    along = (rows - (top[0] + bottom[0]) / 2) * axis[0] + (cols - (top[1] + bottom[1]) / 2) * axis[1]
    return along < 0


def upper_face_only(sketch: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Keep only the sketch strokes of the upper face (eyes, brows, forehead, hair); see ``upper_face_region``."""
    _check_sketch(sketch)
    if sketch.shape != mask.shape:
        raise ValueError(f"upper_face_only: sketch {sketch.shape} and mask {mask.shape} differ in size")
    return np.where(upper_face_region(mask), sketch, 0).astype(sketch.dtype)


def _check_sketch(sketch: np.ndarray) -> None:
    if sketch.ndim != 2 or sketch.dtype != np.uint8:
        raise ValueError(f"sketch must be an HxW uint8 array, got {sketch.dtype} array of shape {sketch.shape}")
