"""Writing pictures: grids of images, labelled sheets of them, and PNG files written atomically (no half-written
output on error)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from mcdm.atomic import atomic_file


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


def labelled_rows(lines: Mapping[str, Sequence[np.ndarray]], scale: int = 2) -> Image.Image:
    """One row per label of equally sized HxWx3 uint8 images, enlarged ``scale`` times, the label at its left."""
    if not lines:
        raise ValueError("no rows to draw")
    columns = {len(images) for images in lines.values()}
    if len(columns) != 1:
        raise ValueError(f"every row needs as many images; got {sorted(columns)}")
    height, width = next(iter(lines.values()))[0].shape[:2]
    size = (width * scale, height * scale)
    tiles = [Image.fromarray(image).resize(size, Image.NEAREST) for images in lines.values() for image in images]
    pad = 2
    sheet = grid(tiles, columns=columns.pop(), pad=pad) if len(tiles) > 1 else ImageOps.expand(tiles[0], pad, "white")
    font = ImageFont.load_default(size=12)
    label_width = int(max(font.getlength(label) for label in lines)) + 12
    canvas = Image.new("RGB", (label_width + sheet.width, sheet.height), "white")
    canvas.paste(sheet, (label_width, 0))
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(lines):
        draw.text((4, pad + i * (size[1] + pad) + size[1] // 2 - 6), label, fill="black", font=font)
    return canvas


def save_png_atomic(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write to a temporary file beside ``path`` and rename it into place, readable like any new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        # unlike tempfile.mkstemp (0600), 0o666 honours the umask: 0644 under the usual 022
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            image.save(f, format="PNG")
    return path
