
import numpy as np
import pytest
import torch
from PIL import Image

from mcdm.errors import ConditionError
from mcdm.testing import SIZE, ModalityConformance
from mcdm_thumbnail.modality import GRID, ThumbnailModality

CELL = SIZE // GRID  # pixels per thumbnail cell at the test size


def halves(size=64, top=(200, 30, 30), bottom=(20, 40, 220)) -> np.ndarray:
    """A square RGB image: one colour above, another below."""
    image = np.empty((size, size, 3), np.uint8)
    image[: size // 2], image[size // 2 :] = top, bottom
    return image


class TestThumbnailConformance(ModalityConformance):
    modality_name = "thumbnail"

    def valid_inputs(self):
        return [halves(), Image.fromarray(halves(size=100, top=(0, 255, 0), bottom=(255, 255, 255)))]


def test_condition_is_the_block_mean_upsampled_with_a_known_channel():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cond = ThumbnailModality().prepare(image, size=SIZE)
    assert cond.shape == (4, SIZE, SIZE) and cond.dtype == torch.float32
    assert torch.equal(cond[3], torch.ones(SIZE, SIZE))
    block = 64 // GRID
    expected = image.reshape(GRID, block, GRID, block, 3).mean(axis=(1, 3)) / 255 * 2 - 1  # (GRID, GRID, 3)
    cells = cond[:3, ::CELL, ::CELL].permute(1, 2, 0).double().numpy()
    np.testing.assert_allclose(cells, expected, atol=1e-6)
    # nearest upsampling: every cell is a constant CELL x CELL block
    assert torch.equal(cond[:3], cond[:3, ::CELL, ::CELL].repeat_interleave(CELL, 1).repeat_interleave(CELL, 2))


@pytest.mark.parametrize("size", [GRID, 10, 64, 100, 257])
def test_any_square_size_keeps_a_uniform_colour(size):
    image = np.full((size, size, 3), (255, 0, 51), np.uint8)
    cond = ThumbnailModality().prepare(image, size=SIZE)
    expected = torch.tensor([1.0, -1.0, 51 / 255 * 2 - 1]).view(3, 1, 1).expand(3, SIZE, SIZE)
    torch.testing.assert_close(cond[:3], expected)


def test_area_averaging_weighs_partial_pixels():
    """Sizes not divisible by GRID: a pixel cut by a cell border counts with the part inside the cell."""
    size = 5 * GRID // 4  # pixels per cell: 1.25
    image = np.zeros((size, size, 3), np.uint8)
    image[:, :3] = 255  # white in columns 0..2, black from column 3
    row = ThumbnailModality().prepare(image, size=GRID)[0, 0]  # one pixel per cell
    # cell 2 spans [2.5, 3.75): 0.5 of white pixel 2 and 0.75 of black pixel 3
    torch.testing.assert_close(row[:3], torch.tensor([1.0, 1.0, 0.4 * 2 - 1]))
    assert (row[3:] == -1).all()


def test_path_pil_float_and_uint8_inputs_agree(tmp_path):
    image = halves(size=48)
    Image.fromarray(image).save(tmp_path / "face.png")
    modality = ThumbnailModality()
    conds = [modality.prepare(raw, size=SIZE) for raw in
             (image, Image.fromarray(image), str(tmp_path / "face.png"), image.astype(np.float32) / 255)]
    for cond in conds[1:]:
        torch.testing.assert_close(cond, conds[0])
    top = torch.tensor([200, 30, 30]) / 255 * 2 - 1
    torch.testing.assert_close(conds[0][:3, 0, 0], top)


def test_null_condition_differs_from_every_real_thumbnail():
    modality = ThumbnailModality()
    grey = modality.prepare(np.full((16, 16, 3), 0.5, np.float32), size=SIZE)  # colour channels are exactly 0
    null = modality.null_condition(grey)
    assert torch.equal(null[:3], grey[:3])
    assert (null[3] == 0).all() and (grey[3] == 1).all()


def test_trains_on_the_face_image():
    from mcdm.data.synthfaces import SynthFaces

    sample = SynthFaces(size=32, seed=0, split="train", length=1)[0]
    modality = ThumbnailModality()
    raw = modality.condition_from_sample(sample, np.random.default_rng(0))
    assert raw is sample.image
    assert modality.prepare(raw, size=32).shape == (4, 32, 32)


@pytest.mark.parametrize(
    "raw, message",
    [
        (np.zeros((32, 48, 3), np.uint8), "square"),
        (np.zeros((32, 32), np.uint8), "expected 3 channel"),
        (np.zeros((32, 32, 4), np.uint8), "expected 3 channel"),
        (np.full((32, 32, 3), np.nan, np.float32), "NaN"),
        (np.full((32, 32, 3), 2.0, np.float32), r"must be in \[0, 1\]"),
        (np.full((32, 32, 3), 300, np.int32), "8-bit"),
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        ("/no/such/face.png", "no such file"),
    ],
)
def test_bad_thumbnails(raw, message):
    with pytest.raises(ConditionError, match=f"thumbnail: .*{message}"):
        ThumbnailModality().prepare(raw, size=SIZE)


@pytest.mark.filterwarnings("ignore::mcdm.errors.UnverifiedModelWarning")
def test_trains_and_composes_with_the_shipped_models(tmp_path):
    from mcdm.demo import EXAMPLES
    from mcdm.testing import check_composes_with_shipped

    face = EXAMPLES / "face-0"
    check_composes_with_shipped("thumbnail", tmp_path, {"thumbnail": face / "reference.png",
                                                        "segmentation": face / "segmentation.png"},
                                refused=(np.zeros((32, 48, 3), np.uint8), "thumbnail: .*square"),
                                block_out_channels=[8, 16], layers_per_block=1, attention=False)
