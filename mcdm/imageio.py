"""Writing pictures: grids of images and PNG files written atomically (no half-written output on error)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

from PIL import Image


def grid(images: Sequence[Image.Image], columns: int | None = None, pad: int = 2) -> Image.Image:
    """Tile equally sized images left to right, top to bottom, on a white background."""
    if not images:
        raise ValueError("no images to tile")
    if len(images) == 1:
        return images[0]
    columns = columns or min(len(images), 8)
    rows = -(-len(images) // columns)
    w, h = images[0].size
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + pad) + pad), "white")
    for i, image in enumerate(images):
        sheet.paste(image.convert("RGB"), (pad + (i % columns) * (w + pad), pad + (i // columns) * (h + pad)))
    return sheet


def save_png_atomic(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
