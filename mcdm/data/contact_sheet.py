"""A contact sheet of synthfaces: image, coloured mask and sketch side by side, a caption under each.

    python -m mcdm.data.contact_sheet --out docs/img/synthfaces.png
"""

import argparse
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mcdm.data.labels import colorize_mask
from mcdm.data.synthfaces import SynthFaces

_GAP = 8
_FONT_SIZE = 11
_CAPTION_LINES = 5


def contact_sheet(n: int = 64, size: int = 128, seed: int = 0, columns: int = 8) -> Image.Image:
    """``n`` test-split faces at ``size`` pixels, ``columns`` per row."""
    faces = SynthFaces(size=size, seed=seed, split="test", length=n, n_captions=1)
    font = ImageFont.load_default(size=_FONT_SIZE)
    line_height = _FONT_SIZE + 2
    tile_w, tile_h = 3 * size, size + _CAPTION_LINES * line_height + 4
    rows = -(-n // columns)
    sheet = Image.new("RGB", (columns * (tile_w + _GAP) + _GAP, rows * (tile_h + _GAP) + _GAP), "white")
    draw = ImageDraw.Draw(sheet)
    chars_per_line = int(tile_w / (0.55 * _FONT_SIZE))
    for i, sample in enumerate(faces):
        assert sample.mask is not None and sample.sketch is not None
        x, y = _GAP + (i % columns) * (tile_w + _GAP), _GAP + (i // columns) * (tile_h + _GAP)
        sketch = np.repeat(sample.sketch[..., None], 3, axis=2)
        sheet.paste(Image.fromarray(np.concatenate([sample.image, colorize_mask(sample.mask), sketch], axis=1)), (x, y))
        lines = textwrap.wrap(sample.captions[0], chars_per_line)[:_CAPTION_LINES]
        for j, line in enumerate(lines):
            draw.text((x, y + size + 2 + j * line_height), line, fill="black", font=font)
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(args.n, args.size, args.seed).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
