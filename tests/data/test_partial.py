import numpy as np
import pytest

from mcdm.data.labels import LABELS, UNKNOWN
from mcdm.data.partial import (drop_mask_parts, erase_region, erase_strokes, unknown_region, upper_face_only,
                               upper_face_region)
from mcdm.data.synthfaces import SynthFaces


@pytest.fixture(scope="module")
def sample():
    return SynthFaces(size=64, seed=4, length=1)[0]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_full_masks_have_no_unknown_and_partial_ones_do(sample):
    assert not (sample.mask == UNKNOWN).any()
    partial = unknown_region(sample.mask, rng(), area=(0.2, 0.2))
    assert set(np.unique(partial)) <= set(range(len(LABELS))) | {UNKNOWN}
    assert abs((partial == UNKNOWN).mean() - 0.2) < 0.03
    known = partial != UNKNOWN
    assert np.array_equal(partial[known], sample.mask[known])


def test_drop_mask_parts_marks_whole_parts_unknown(sample):
    dropped = drop_mask_parts(sample.mask, rng(1), p=0.5)
    gone = {LABELS[i] for i in np.unique(sample.mask)} - {LABELS[i] for i in np.unique(dropped) if i != UNKNOWN}
    assert gone and "background" not in gone
    for name in gone:
        assert (dropped[sample.mask == LABELS.index(name)] == UNKNOWN).all()
    assert np.array_equal(drop_mask_parts(sample.mask, rng(1), p=0.5), dropped)  # deterministic
    only_hair = drop_mask_parts(sample.mask, rng(), p=1.0, droppable=["hair"])
    assert np.array_equal(only_hair == UNKNOWN, sample.mask == LABELS.index("hair"))
    with pytest.raises(ValueError, match="whiskers"):
        drop_mask_parts(sample.mask, rng(), droppable=["whiskers"])


def test_erase_strokes_removes_whole_strokes_only(sample):
    edges = sample.sketch > 0
    erased = erase_strokes(sample.sketch, rng(2), fraction=0.5)
    left = erased > 0
    assert not (left & ~edges).any()  # nothing new drawn
    assert 0.5 <= 1 - left.sum() / edges.sum() < 0.9
    assert np.array_equal(erase_strokes(sample.sketch, rng(2), fraction=0.5), erased)
    assert np.array_equal(erase_strokes(sample.sketch, rng(), fraction=0.0), sample.sketch)
    assert not erase_strokes(sample.sketch, rng(), fraction=1.0).any()


def test_erase_region_clears_a_box(sample):
    erased = erase_region(sample.sketch, rng(3), area=(0.3, 0.3))
    assert erased.sum() < sample.sketch.sum()
    assert not ((erased > 0) & (sample.sketch == 0)).any()


def test_upper_face_only_keeps_eyes_and_drops_mouth(sample):
    region = upper_face_region(sample.mask)
    for name in ("l_eye", "r_eye", "l_brow", "r_brow"):
        assert region[sample.mask == LABELS.index(name)].all(), name
    for name in ("u_lip", "l_lip"):
        assert not region[sample.mask == LABELS.index(name)].any(), name
    upper = upper_face_only(sample.sketch, sample.mask)
    assert np.array_equal(upper, np.where(region, sample.sketch, 0))
    assert 0 < upper.sum() < sample.sketch.sum()


def test_upper_face_needs_eyes_and_mouth():
    with pytest.raises(ValueError, match="no eyes"):
        upper_face_region(np.zeros((8, 8), np.uint8))
