"""The page's input values (canvases, paintings, uploads, text) turned into the raw inputs ``prepare`` reads.

Drawings and paintings are saved as PNG files in the request's folder; uploads are copied there. Everything a
person can get wrong here is a ConditionError naming the modality, shown in the page.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mcdm.errors import ConditionError
from mcdm.modality import InputSpec

MAX_SIDE = 1024  # pixels: larger drawings and uploads are refused before any decoding work
MAX_TEXT = 1000  # characters of a caption
UNKNOWN_RGB = (255, 255, 255)  # the painter's blank canvas, eraser and "unknown" brush
OFF_PALETTE = 64  # RGB distance beyond which a painted pixel is no label's colour
OFF_PALETTE_SHARE = 0.05  # share of such pixels above which a painting is refused rather than snapped


def check_side(name: str, width: int, height: int) -> None:
    if max(width, height) > MAX_SIDE:
        raise ConditionError(f"{name}: the image is {width}x{height}; at most {MAX_SIDE}x{MAX_SIDE} is accepted")


def save_drawing(name: str, composite: np.ndarray | None, folder: Path) -> str | None:
    """An IMAGE canvas's RGB composite as ``<name>.png``; None when nothing was drawn or uploaded."""
    if composite is None or composite.min() == 255:
        return None
    check_side(name, composite.shape[1], composite.shape[0])
    Image.fromarray(np.ascontiguousarray(composite[..., :3]), "RGB").save(folder / f"{name}.png")
    return f"{name}.png"


def save_label_map(name: str, spec: InputSpec, composite: np.ndarray | None, folder: Path) -> str | None:
    """A LABEL_MAP painting as ``<name>.png``, an 8-bit id map; None when nothing but "unknown" was painted.

    Brush edges may blend colours, so each pixel takes the nearest label's id; a painting that is mostly not
    the palette's colours (a photo uploaded into the painter) is refused instead.
    """
    if composite is None:
        return None
    check_side(name, composite.shape[1], composite.shape[0])
    colours = np.array([UNKNOWN_RGB, *(label.color for label in spec.labels)], dtype=np.float32)
    ids = np.array([spec.unknown, *(label.id for label in spec.labels)])
    rgb = composite[..., :3].reshape(-1, 3)
    unique, inverse = np.unique(rgb, axis=0, return_inverse=True)  # a painting has few distinct colours
    distance = np.linalg.norm(unique[:, None].astype(np.float32) - colours[None], axis=-1)
    nearest = distance.argmin(axis=1)[inverse.reshape(-1)]
    off = (distance.min(axis=1) > OFF_PALETTE)[inverse.reshape(-1)]
    if off.mean() > OFF_PALETTE_SHARE:
        r, g, b = (int(c) for c in rgb[off.argmax()])
        raise ConditionError(f"{name}: {off.mean():.0%} of the painting is in colours of no label (e.g. ({r}, {g}, "
                             f"{b})); paint with the palette, or give a label map as a file")
    if (nearest == 0).all():
        return None
    labels = ids[nearest].reshape(composite.shape[:2]).astype(np.uint8)
    Image.fromarray(labels, "L").save(folder / f"{name}.png")
    return f"{name}.png"


def save_upload(name: str, path: str | None, folder: Path) -> str | None:
    """An uploaded file copied as ``<name><suffix>``; images larger than MAX_SIDE are refused unread."""
    if not path:
        return None
    source = Path(path)
    try:
        with Image.open(source) as image:  # reads the header only
            check_side(name, *image.size)
    except (UnidentifiedImageError, OSError):
        pass  # not an image PIL knows: the modality's prepare says what it expected
    target = f"{name}{source.suffix.lower()}"
    shutil.copyfile(source, folder / target)
    return target


def caption(name: str, text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise ConditionError(f"{name}: the text is empty; type one, pick an example, or switch {name} off")
    if len(text) > MAX_TEXT:
        raise ConditionError(f"{name}: the text has {len(text)} characters; at most {MAX_TEXT} are accepted")
    return text


def choice(name: str, spec: InputSpec, value: str | None) -> str:
    if value not in spec.choices:
        raise ConditionError(f"{name}: choose one of {', '.join(spec.choices)}, got {value!r}")
    return value
