import numpy as np
import pytest

from mcdm.data.labels import (
    BISENET_LABELS,
    CELEBAMASK_HQ_PALETTE,
    LABELS,
    PART_NAMES,
    UNKNOWN,
    colorize_mask,
    remap_labels,
)


def test_official_ids_and_bisenet_order():
    assert len(LABELS) == 19 and LABELS[0] == "background" and LABELS[18] == "cloth"
    assert LABELS.index("hair") == 13 and LABELS.index("l_eye") == 4
    assert BISENET_LABELS.index("hair") == 17 and BISENET_LABELS.index("hat") == 18
    assert sorted(BISENET_LABELS) == sorted(LABELS)
    assert PART_NAMES == LABELS[1:]
    assert UNKNOWN >= len(LABELS)


def test_palette_is_the_official_one():
    assert CELEBAMASK_HQ_PALETTE.shape == (19, 3) and CELEBAMASK_HQ_PALETTE.dtype == np.uint8
    assert CELEBAMASK_HQ_PALETTE[1].tolist() == [204, 0, 0]  # skin
    assert CELEBAMASK_HQ_PALETTE[13].tolist() == [0, 0, 204]  # hair
    assert CELEBAMASK_HQ_PALETTE[18].tolist() == [0, 204, 0]  # cloth


def test_colorize_mask_uses_palette_and_shows_unknown():
    mask = np.array([[0, 1], [13, UNKNOWN]], dtype=np.uint8)
    colored = colorize_mask(mask)
    assert colored.shape == (2, 2, 3) and colored.dtype == np.uint8
    assert colored[0, 1].tolist() == [204, 0, 0]
    assert colored[1, 0].tolist() == [0, 0, 204]
    assert colored[1, 1].tolist() not in CELEBAMASK_HQ_PALETTE.tolist()


def test_colorize_mask_rejects_ids_outside_the_label_set():
    with pytest.raises(ValueError, match=r"\[19\]"):
        colorize_mask(np.array([[19]], dtype=np.uint8))


def test_remap_to_bisenet_and_back():
    mask = np.arange(19, dtype=np.uint8).reshape(1, 19)
    bisenet = remap_labels(mask, LABELS, BISENET_LABELS)
    assert bisenet[0, LABELS.index("hair")] == 17
    assert np.array_equal(remap_labels(bisenet, BISENET_LABELS, LABELS), mask)
    assert remap_labels(np.array([[UNKNOWN]], np.uint8), LABELS, BISENET_LABELS)[0, 0] == UNKNOWN
