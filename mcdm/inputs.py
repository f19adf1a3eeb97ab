"""Reading raw image-like inputs (a path, a PIL image, an array) for modality plugins, with clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mcdm.errors import ConditionError


def load_array(raw: Any, *, modality: str, keep_palette: bool = False) -> np.ndarray:
    """An HxW or HxWxC array from a file path, a PIL image or an array-like; ConditionError when unreadable.

    ``keep_palette`` returns a palette ("P") image's indices rather than its colours (label maps).
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(raw, (str, os.PathLike)):
        path = Path(raw)
        if not path.is_file():
            raise ConditionError(f"{modality}: no such file {str(path)!r}")
        try:
            with Image.open(path) as image:
                image.load()
                raw = image.copy()
        except (UnidentifiedImageError, OSError) as exc:
            raise ConditionError(f"{modality}: {str(path)!r} is not a readable image ({exc})") from exc
    if isinstance(raw, Image.Image):
        if raw.mode == "P" and keep_palette:
            return np.asarray(raw)
        if raw.mode not in ("L", "RGB", "I", "I;16", "F"):
            raw = raw.convert("RGB")
        return np.asarray(raw)
    try:
        array = np.asarray(raw)
    except Exception as exc:
        raise ConditionError(f"{modality}: cannot read a {type(raw).__name__} as an image") from exc
    if array.dtype == object or array.ndim not in (2, 3):
        raise ConditionError(f"{modality}: expected an HxW or HxWxC image, got shape {array.shape}")
    return array


def check_image(array: np.ndarray, *, modality: str, channels: tuple[int, ...]) -> np.ndarray:
    """Square, finite, with an allowed channel count; returns HxWxC."""
    if array.ndim == 2:
        array = array[..., None]
    height, width, c = array.shape
    if c not in channels:
        raise ConditionError(f"{modality}: expected {' or '.join(map(str, channels))} channel(s), got {c}")
    if height != width:
        raise ConditionError(f"{modality}: expected a square image, got {width}x{height}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise ConditionError(f"{modality}: the image contains NaN or infinite values")
    return array
