import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mcdm.errors import ConditionError
from mcdm.testing import SIZE, ModalityConformance
from mcdm_sketch.modality import SketchModality


def drawing(size=128, box=(30, 30, 90, 100), black_on_white=False) -> Image.Image:
    image = Image.new("L", (size, size), 255 if black_on_white else 0)
    ImageDraw.Draw(image).ellipse(box, outline=0 if black_on_white else 255, width=max(1, size // 64))
    return image


class TestSketchConformance(ModalityConformance):
    modality_name = "sketch"

    def valid_inputs(self):
        return [drawing(), drawing(box=(10, 50, 60, 120))]


def test_both_polarities_give_the_same_condition():
    modality = SketchModality()
    white_lines = modality.prepare(drawing(), size=SIZE)
    black_lines = modality.prepare(drawing(black_on_white=True), size=SIZE)
    assert torch.equal(white_lines, black_lines)
    assert white_lines.shape == (1, SIZE, SIZE)
    assert set(white_lines.unique().tolist()) == {-1.0, 1.0}
    assert 0.02 < (white_lines > 0).float().mean() < 0.5  # a thin outline, not a blob


def test_any_input_size_and_a_file_path(tmp_path):
    path = tmp_path / "sketch.png"
    drawing(size=300).save(path)
    cond = SketchModality().prepare(str(path), size=SIZE)
    assert cond.shape == (1, SIZE, SIZE) and (cond > 0).any()


def test_a_photo_becomes_its_edges():
    rng = np.random.default_rng(0)
    photo = np.full((64, 64, 3), 90, np.uint8) + rng.integers(0, 30, (64, 64, 3), dtype=np.uint8)
    photo[16:48, 16:48] = (200, 150, 120)
    cond = SketchModality().prepare(photo, size=SIZE)
    edges = cond[0] > 0
    assert edges.any() and edges[8:24, 8:24].any()  # the square's border
    assert not edges[12:20, 12:20].all()


@pytest.mark.parametrize(
    "raw, message",
    [
        (np.zeros((32, 48), np.uint8), "square"),
        (np.zeros((32, 32, 2), np.uint8), "1 or 3 or 4 channel"),
        (np.full((32, 32), np.nan, np.float32), "NaN"),
        ("/no/such/sketch.png", "no such file"),
    ],
)
def test_bad_sketches(raw, message):
    with pytest.raises(ConditionError, match=message):
        SketchModality().prepare(raw, size=SIZE)
