import cv2
import numpy as np
import pytest

from mcdm.data.attributes import (
    EYE_COLORS,
    FACE_SHAPES,
    HAIR_COLORS,
    HAIR_STYLES,
    SKIN_TONES,
    FaceAttributes,
    attributes_to_records,
    record_to_attributes,
)
from mcdm.data.labels import LABELS
from mcdm.data.sketch import sketch_from_image
from mcdm.data.synthfaces import SynthFaces, render_face, sample_attributes


@pytest.fixture(scope="module")
def faces64() -> list:
    return list(SynthFaces(size=64, seed=3, length=24))


def test_same_seed_same_bytes_and_indices_differ():
    a, b = SynthFaces(size=32, seed=7, length=3), SynthFaces(size=32, seed=7, length=3)
    for i in range(3):
        x, y = a[i], b[i]
        assert x.image.tobytes() == y.image.tobytes()
        assert x.mask.tobytes() == y.mask.tobytes() and x.sketch.tobytes() == y.sketch.tobytes()
        assert x.attributes == y.attributes and x.captions == y.captions
    assert a[0].image.tobytes() != a[1].image.tobytes()
    assert a[0].image.tobytes() != SynthFaces(size=32, seed=8, length=1)[0].image.tobytes()


def test_sample_is_independent_of_access_order():
    faces = SynthFaces(size=32, seed=1, length=10)
    late_first = faces[9]
    [faces[i] for i in range(9)]
    assert faces[9].image.tobytes() == late_first.image.tobytes()
    assert faces[-1].name == late_first.name


def test_train_and_test_never_share_a_sample():
    train = SynthFaces(size=32, seed=0, split="train", length=200)
    test = SynthFaces(size=32, seed=0, split="test", length=200)
    train_attributes = {train.attributes(i) for i in range(len(train))}
    assert not train_attributes & {test.attributes(i) for i in range(len(test))}
    assert train[0].image.tobytes() != test[0].image.tobytes()


@pytest.mark.parametrize("size", [32, 48, 100, 256])
def test_any_size_from_32_to_256(size):
    image, mask = render_face(SynthFaces(seed=0).attributes(0), size)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert mask.shape == (size, size) and mask.dtype == np.uint8


@pytest.mark.parametrize("size", [31, 257])
def test_size_outside_range_is_refused(size):
    with pytest.raises(ValueError, match="32..256"):
        SynthFaces(size=size)


def test_the_same_face_at_every_size():
    small, large = SynthFaces(size=32, length=1)[0], SynthFaces(size=128, length=1)[0]
    assert small.attributes == large.attributes
    # the large mask, reduced by majority vote, is the small one almost everywhere
    coarse = cv2.resize(large.mask, (32, 32), interpolation=cv2.INTER_NEAREST)
    assert (coarse == small.mask).mean() > 0.85


def test_mask_ids_are_official_and_face_parts_are_visible_at_32px():
    for sample in SynthFaces(size=32, seed=5, length=30):
        assert sample.mask.max() < len(LABELS)
        present = {LABELS[i] for i in np.unique(sample.mask)}
        assert {"skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "neck"} <= present, sample.name
        assert present & {"u_lip", "l_lip"}, sample.name  # a thin curved lip may vanish at 32 px, not both
        face = [i for i, n in enumerate(LABELS) if n not in ("background", "hair", "hat", "neck", "cloth", "neck_l")]
        assert np.isin(sample.mask, face).mean() > 0.15  # the face fills most of the frame


def test_mask_follows_attributes(faces64):
    for sample in faces64:
        a, present = sample.attributes, {LABELS[i] for i in np.unique(sample.mask)}
        assert ("eye_g" in present) == a.eyeglasses
        assert ("hat" in present) == a.hat
        assert ("hair" in present) == (a.hair_style != "bald")
        assert ("neck_l" in present) == a.necklace
        assert ("mouth" in present) == a.mouth_open


def test_sketch_is_the_edge_map_of_the_image(faces64):
    for sample in faces64:
        assert np.array_equal(sample.sketch, sketch_from_image(sample.image))
        assert set(np.unique(sample.sketch)) <= {0, 255}


def test_sketch_edges_lie_on_mask_boundaries(faces64):
    near_fractions = []
    for sample in faces64:
        m = sample.mask
        boundary = np.zeros(m.shape, bool)
        boundary[:-1] |= m[:-1] != m[1:]
        boundary[1:] |= m[:-1] != m[1:]
        boundary[:, :-1] |= m[:, :-1] != m[:, 1:]
        boundary[:, 1:] |= m[:, :-1] != m[:, 1:]
        near = cv2.dilate(boundary.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        edges = sample.sketch > 0
        near_fractions.append((edges & near).sum() / edges.sum())
    # edges inside a part (iris, teeth, hair strands, beard) are allowed, but they are few
    assert min(near_fractions) > 0.7 and np.mean(near_fractions) > 0.9


def test_no_single_modality_fixes_the_image():
    """Two faces that share a caption-level description still differ in geometry and colour."""
    faces = SynthFaces(size=32, length=400)
    seen: dict = {}
    for i in range(len(faces)):
        a = faces.attributes(i)
        key = (a.gender, a.hair_color, a.hair_style, a.skin_tone, a.smiling)
        if key in seen:
            b = seen[key]
            assert a.center_x != b.center_x and a.background_top != b.background_top
            return
        seen[key] = a
    pytest.fail("no two faces shared a description")


def test_attributes_cover_every_choice():
    attributes = [sample_attributes(np.random.default_rng(i)) for i in range(600)]
    for name, choices in (
        ("hair_color", HAIR_COLORS), ("hair_style", HAIR_STYLES), ("skin_tone", SKIN_TONES),
        ("eye_color", EYE_COLORS), ("face_shape", FACE_SHAPES),
    ):  # fmt: skip
        assert {getattr(a, name) for a in attributes} == set(choices), name
    for flag in ("smiling", "mouth_open", "eyeglasses", "hat", "beard", "bangs", "earrings", "necklace"):
        assert {getattr(a, flag) for a in attributes} == {True, False}, flag
    assert not any(a.beard for a in attributes if a.gender == "female")
    assert len({round(a.rotation) for a in attributes}) > 10


def test_attribute_record_round_trips():
    attributes = [sample_attributes(np.random.default_rng(i)) for i in range(5)]
    records = attributes_to_records(attributes)
    assert [record_to_attributes(r) for r in records] == attributes
    assert [FaceAttributes.from_dict(a.to_dict()) for a in attributes] == attributes


def test_invalid_attributes_are_refused():
    a = sample_attributes(np.random.default_rng(0))
    with pytest.raises(ValueError, match="hair_color"):
        FaceAttributes.from_dict({**a.to_dict(), "hair_color": "green"})
