"""The demo grid: one column per input, the held-out face, and every subset of the modalities."""

import numpy as np
import yaml
from PIL import Image

from conftest import SIZE
from mcdm.demo import CELL, HEADER, run_demo


def test_demo_grid_has_every_subset(tmp_path, make_model):
    make_model(None, name="prior")
    for i, name in enumerate(("toy_a", "toy_b")):
        make_model(name, seed=i + 1, name=name)
    (tmp_path / "composition.yaml").write_text(yaml.safe_dump(
        {"prior": "prior", "steps": 2, "modalities": {"toy_a": {"path": "toy_a"}, "toy_b": {"path": "toy_b"}}}))
    examples = tmp_path / "examples"
    for k in range(2):
        face = examples / f"face-{k}"
        face.mkdir(parents=True)
        for name in ("toy_a", "toy_b"):
            grey = (np.random.default_rng(k).random((SIZE, SIZE)) * 255).astype(np.uint8)
            Image.fromarray(grey).save(face / f"{name}.png")
    out = run_demo(str(tmp_path), tmp_path / "demo.png", examples=examples, progress=False)
    columns = 2 + 1 + 3  # two inputs, the reference, {a}, {b}, {a, b}
    assert Image.open(out).size == (columns * CELL, HEADER + 2 * CELL)
