import numpy as np
import pytest
import torch
from PIL import Image

from mcdm.data.labels import CELEBAMASK_HQ_PALETTE, UNKNOWN
from mcdm.errors import ConditionError
from mcdm.testing import SIZE, ModalityConformance
from mcdm_segmentation.modality import CHANNELS, NUM_LABELS, SegmentationModality


def face_mask(size=64, unknown_right=False) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[8:56, 12:52] = 1  # skin
    mask[20:26, 18:26] = 4  # l_eye
    mask[20:26, 38:46] = 5  # r_eye
    mask[40:46, 24:40] = 10  # mouth
    mask[0:10, :] = 13  # hair
    if unknown_right:
        mask[:, size // 2:] = UNKNOWN
    return mask


class TestSegmentationConformance(ModalityConformance):
    modality_name = "segmentation"

    def valid_inputs(self):
        return [face_mask(), face_mask(unknown_right=True)]


def test_one_hot_with_unknown_channel_and_weight_map():
    modality = SegmentationModality()
    cond = modality.prepare(face_mask(unknown_right=True), size=SIZE)
    assert cond.shape == (CHANNELS, SIZE, SIZE)
    torch.testing.assert_close(cond.sum(0), torch.ones(SIZE, SIZE))  # exactly one channel per pixel
    weight = modality.weight_map(cond)
    assert weight[:, : SIZE // 2].eq(1).all() and weight[:, SIZE // 2:].eq(0).all()
    null = modality.null_condition(cond)
    assert null[NUM_LABELS].eq(1).all() and modality.weight_map(null).eq(0).all()


def test_palette_image_and_id_map_agree(tmp_path):
    mask = face_mask()
    Image.fromarray(CELEBAMASK_HQ_PALETTE[mask]).save(tmp_path / "palette.png")
    Image.fromarray(mask).save(tmp_path / "ids.png")
    modality = SegmentationModality()
    assert torch.equal(modality.prepare(tmp_path / "palette.png", size=SIZE), modality.prepare(tmp_path / "ids.png", size=SIZE))


def test_resized_with_nearest_so_no_new_labels_appear():
    cond = SegmentationModality().prepare(face_mask(size=100), size=SIZE)
    present = set(cond.sum((1, 2)).nonzero().flatten().tolist())
    assert present <= {0, 1, 4, 5, 10, 13}


@pytest.mark.parametrize(
    "raw, message",
    [
        (np.full((32, 32), 19, np.uint8), "label id 19 is outside"),
        (np.full((32, 32, 3), 7, np.uint8), "not in the CelebAMask-HQ palette"),
        (np.zeros((32, 40), np.uint8), "square"),
        (np.full((32, 32), 1.5, np.float32), "whole numbers"),
    ],
)
def test_bad_masks(raw, message):
    with pytest.raises(ConditionError, match=message):
        SegmentationModality().prepare(raw, size=SIZE)
