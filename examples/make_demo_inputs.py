"""Write the demo's example inputs from held-out synthetic faces (the test split, never used in training).

    python examples/make_demo_inputs.py       # -> examples/inputs/face-<k>/{sketch.png, segmentation.png, text.txt}

Each folder holds one face's inputs, one file per modality, named after the modality: a sketch, a partial
mask (some parts unknown, value 255) and a caption that mentions a few attributes.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from mcdm.data.captions import partial_caption
from mcdm.data.partial import drop_mask_parts
from mcdm.data.synthfaces import SynthFaces

FACES = (3, 7, 12)
OUT = Path(__file__).resolve().parent / "inputs"


def main() -> None:
    held_out = SynthFaces(size=32, seed=0, split="test", length=max(FACES) + 1)
    for k, index in enumerate(FACES):
        sample = held_out[index]
        rng = np.random.default_rng(index)
        folder = OUT / f"face-{k}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample.sketch).save(folder / "sketch.png")
        Image.fromarray(drop_mask_parts(sample.mask, rng, p=0.4)).save(folder / "segmentation.png")
        (folder / "text.txt").write_text(partial_caption(sample.attributes, rng, k=4) + "\n")
        Image.fromarray(sample.image).save(folder / "reference.png")  # the held-out face itself, for comparison
        print(folder, "|", (folder / "text.txt").read_text().strip())


if __name__ == "__main__":
    main()
