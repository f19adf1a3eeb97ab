"""The demo grid: one column per input, the held-out face, and every subset of the modalities."""

from pathlib import Path

import numpy as np
import yaml
from click.testing import CliRunner
from PIL import Image

import mcdm
from conftest import SIZE
from mcdm.cli import cli
from mcdm.demo import CELL, EXAMPLES, HEADER, example_inputs, run_demo


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


def test_the_shipped_inputs_are_package_data_with_every_modality():
    faces = sorted(p.name for p in EXAMPLES.glob("face-*"))
    assert EXAMPLES.parent == Path(mcdm.__file__).parent and faces == ["face-0", "face-1", "face-2"]
    modalities = ["sketch", "segmentation", "text"]
    for face in faces:
        assert list(example_inputs(EXAMPLES / face, modalities)) == modalities


def test_demo_reads_other_inputs_and_refuses_a_folder_without_faces_in_one_line(tmp_path, make_model):
    make_model(None, name="prior")
    make_model("toy_a", seed=1, name="toy_a")
    (tmp_path / "composition.yaml").write_text(yaml.safe_dump(
        {"prior": "prior", "steps": 1, "modalities": {"toy_a": {"path": "toy_a"}}}))
    (tmp_path / "mine" / "face-0").mkdir(parents=True)
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(tmp_path / "mine" / "face-0" / "toy_a.png")
    run = lambda *args: CliRunner().invoke(cli, ["demo", "--model", str(tmp_path), *map(str, args)])  # noqa: E731
    result = run("--inputs", tmp_path / "mine", "--out", tmp_path / "demo.png")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "demo.png").size == (3 * CELL, HEADER + CELL)
    result = run("--inputs", tmp_path / "none", "--out", tmp_path / "never.png")
    assert result.exit_code == 2 and not (tmp_path / "never.png").exists()
    assert result.output == f"Error: no example inputs under {tmp_path / 'none'}: expected face-*/ folders\n"
    (tmp_path / "mine" / "face-0" / "toy_a.png").unlink()
    result = run("--inputs", tmp_path / "mine", "--out", tmp_path / "never.png")
    assert "example inputs missing under" in result.output and "face-0/toy_a (.png or .txt)" in result.output


def test_a_label_map_input_is_drawn_in_its_labels_colours():
    from mcdm.data.labels import colorize_mask
    from mcdm.demo import _coloured
    from mcdm.plugins import make_plugin_manager

    spec = make_plugin_manager().modality("segmentation").input_spec
    ids = np.asarray(Image.open(EXAMPLES / "face-0" / "segmentation.png"))
    assert np.array_equal(_coloured(ids, spec), colorize_mask(ids))  # the dataset's palette, unknown grey
