"""``mcdm demo``: compose the shipped models on held-out example inputs and write one PNG grid.

Rows: the example faces. Columns: the inputs (one per modality, and the held-out face they came from), then
samples for each modality alone, every pair, and all of them together, all from the same seed.

The inputs are package data (``mcdm/demo-inputs``, in the repository a link to ``examples/inputs``), so an
installed mcdm has them too; ``mcdm demo --inputs DIR`` reads others laid out the same way.
"""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm.auto import tqdm

from mcdm.compose import Composer
from mcdm.errors import ConditionError
from mcdm.imageio import save_png_atomic
from mcdm.modality import InputKind, InputSpec

EXAMPLES = Path(__file__).resolve().parent / "demo-inputs"
CELL = 96  # pixels per cell: 32x32 samples shown at 3x
HEADER = 28


def example_inputs(folder: Path, modalities: list[str]) -> dict[str, object]:
    """One face's inputs: ``<modality>.png`` (an image path) or ``<modality>.txt`` (its text) for each modality."""
    found = {}
    for name in modalities:
        if (folder / f"{name}.png").is_file():
            found[name] = str(folder / f"{name}.png")
        elif (folder / f"{name}.txt").is_file():
            found[name] = (folder / f"{name}.txt").read_text().strip()
    return found


def run_demo(model: str = "synthfaces-32", out: Path = Path("mcdm-demo.png"), *, steps: int | None = None,
             seed: int = 0, examples: Path = EXAMPLES, progress: bool = True) -> Path:
    faces = sorted(p for p in examples.glob("face-*") if p.is_dir())
    if not faces:
        raise ConditionError(f"no example inputs under {examples}: expected face-*/ folders")
    composer = Composer.from_pretrained(model)
    modalities = list(composer.modalities)
    specs = {name: composer.modalities[name].input_spec for name in modalities}
    subsets = [combo for k in range(1, len(modalities) + 1) for combo in itertools.combinations(modalities, k)]
    headers = [*modalities, "held-out face", *(" + ".join(_short(m, specs[m]) for m in s) for s in subsets)]
    sheet = Image.new("RGB", (CELL * len(headers), HEADER + CELL * len(faces)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    for column, header in enumerate(headers):
        # "sketch + mask + text" is wider than a cell: wrap it onto a second line
        draw.multiline_text((column * CELL + 4, 2), textwrap.fill(header, 17), fill="black", font=font, spacing=1)
    inputs = [example_inputs(face, modalities) for face in faces]
    missing = [f"{face.name}/{m}" for face, given in zip(faces, inputs) for m in modalities if m not in given]
    if missing:
        raise ConditionError(f"example inputs missing under {examples}: {', '.join(missing)} (.png or .txt)")
    for row, face in enumerate(faces):
        tiles = [_input_tile(inputs[row][name], specs[name], font) for name in modalities]
        tiles.append(_image_tile(face / "reference.png"))
        for column, tile in enumerate(tiles):
            sheet.paste(tile, (column * CELL, HEADER + row * CELL))
    for column, subset in enumerate(tqdm(subsets, desc="demo", disable=not progress), start=len(modalities) + 1):
        # every face of one subset in one batch, one sample each
        images = composer.generate([{name: given[name] for name in subset} for given in inputs], steps=steps,
                                   seed=seed, progress=False)
        for row, image in enumerate(images):
            sheet.paste(image.resize((CELL, CELL), Image.NEAREST), (column * CELL, HEADER + row * CELL))
    return save_png_atomic(sheet, out)


def _short(name: str, spec: InputSpec | None) -> str:
    """A modality's name in the subsets' headers: a label map is "mask" there (the headers stay two lines)."""
    return "mask" if spec is not None and spec.kind is InputKind.LABEL_MAP else name


def _image_tile(path: Path) -> Image.Image:
    if not path.is_file():
        return Image.new("RGB", (CELL, CELL), "lightgray")
    return Image.open(path).convert("RGB").resize((CELL, CELL), Image.NEAREST)


def _input_tile(value: object, spec: InputSpec | None, font) -> Image.Image:
    """A picture of one input: a label map in its labels' colours (unknown grey), text wrapped."""
    if isinstance(value, str) and not value.endswith(".png"):
        tile = Image.new("RGB", (CELL, CELL), "white")
        ImageDraw.Draw(tile).multiline_text((3, 3), textwrap.fill(value, 17), fill="black", font=font, spacing=1)
        return tile
    image = Image.open(value)
    if spec is not None and spec.kind is InputKind.LABEL_MAP:
        image = Image.fromarray(_coloured(np.asarray(image), spec))
    return image.convert("RGB").resize((CELL, CELL), Image.NEAREST)


def _coloured(ids: np.ndarray, spec: InputSpec) -> np.ndarray:
    """An id map as HxWx3 uint8 in the colours of its modality's labels, its unknown id grey."""
    from mcdm.data.labels import UNKNOWN_COLOR

    lut = np.zeros((256, 3), dtype=np.uint8)
    for label in spec.labels:
        lut[label.id] = label.color
    lut[spec.unknown] = UNKNOWN_COLOR
    return lut[ids.astype(np.uint8)]
