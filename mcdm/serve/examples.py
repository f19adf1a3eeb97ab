"""Held-out example faces for the page: the demo's inputs, then more faces of the synthetic test split.

Each example is a folder of ``<modality>.png`` / ``<modality>.txt`` files (as ``mcdm.demo.example_inputs`` reads)
and the ``reference.png`` face they came from; the page offers each one a click away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from mcdm.demo import EXAMPLES, example_inputs

HELD_OUT = 5  # synthetic test-split faces added after the demo's
HELD_OUT_START = 1000  # past the faces `mcdm eval` scores by default, so the page shows others


@dataclass(frozen=True)
class Example:
    name: str
    reference: Path
    inputs: dict[str, str]  # modality -> a file path, or the text itself


def held_out_examples(modalities: list[str], folder: Path, size: int) -> list[Example]:
    """The demo's example faces and ``HELD_OUT`` more, written under ``folder``; only the given modalities."""
    faces = sorted(p for p in EXAMPLES.glob("face-*") if p.is_dir())
    faces += _write_synthetic_faces(folder, size)
    examples = [Example(face.name, face / "reference.png", example_inputs(face, modalities)) for face in faces]
    return [example for example in examples if example.inputs]


def _write_synthetic_faces(folder: Path, size: int) -> list[Path]:
    from mcdm.data.render import MIN_SIZE
    from mcdm.data.synthfaces import SynthFaces

    # smaller models still read them: every modality's prepare resizes to the model's size
    split = SynthFaces(size=max(size, MIN_SIZE), seed=0, split="test", length=HELD_OUT_START + HELD_OUT)
    written = []
    for index in range(HELD_OUT_START, HELD_OUT_START + HELD_OUT):
        sample = split[index]
        face = folder / f"test-{index}"
        face.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.image).save(face / "reference.png")
        Image.fromarray(sample.sketch).save(face / "sketch.png")
        Image.fromarray(sample.mask).save(face / "segmentation.png")
        (face / "text.txt").write_text(sample.captions[0] + "\n")
        written.append(face)
    return written
