"""Synthfaces variants: the distributions they promise, the same faces otherwise, and their own caches."""

import numpy as np
import pytest

from mcdm.data import SynthFaces
from mcdm.data.cache import load_or_build_cache
from mcdm.data.captions import parse_caption

N = 300


def attributes(variant):
    faces = SynthFaces(size=32, seed=0, split="train", length=N, variant=variant)
    return [faces.attributes(i) for i in range(N)]


def test_dark_hair_has_only_dark_hair_no_eyeglasses_and_plain_pale_backgrounds():
    drawn = attributes("dark-hair")
    assert {a.hair_color for a in drawn} == {"black", "brown"}
    assert not any(a.eyeglasses for a in drawn)
    assert all(a.background_top == a.background_bottom and min(a.background_top) >= 180 for a in drawn)


def test_studio_keeps_every_hair_colour_and_eyeglasses_under_strong_light_on_dark_backgrounds():
    drawn = attributes("studio")
    assert {a.hair_color for a in drawn} == {"black", "brown", "blond", "red", "gray"}
    assert 0.15 < np.mean([a.eyeglasses for a in drawn]) < 0.45
    assert all(a.light_strength >= 0.35 and max(a.background_top + a.background_bottom) <= 90 for a in drawn)


def test_default_is_the_dataset_unchanged_and_variants_keep_each_faces_identity():
    default, studio = attributes("default"), attributes("studio")
    assert default == [SynthFaces(size=32, seed=0, split="train", length=N).attributes(i) for i in range(N)]
    for a, b in zip(default, studio):
        assert (a.gender, a.face_shape, a.hair_style, a.smiling, a.rotation) == \
               (b.gender, b.face_shape, b.hair_style, b.smiling, b.rotation)


def test_captions_describe_the_variants_face():
    face = SynthFaces(size=32, seed=0, split="test", length=20, variant="dark-hair")
    for i in range(20):
        stated = parse_caption(face[i].captions[0])
        assert stated.get("eyeglasses", False) is False
        if "hair_color" in stated:
            assert stated["hair_color"] == face.attributes(i).hair_color


def test_each_variant_has_its_own_cache(tmp_path):
    default = load_or_build_cache(32, 4, 0, "test", tmp_path, workers=1, progress=False)
    studio = load_or_build_cache(32, 4, 0, "test", tmp_path, variant="studio", workers=1, progress=False)
    assert default.path != studio.path and studio.path.name.endswith("-studio")
    assert not np.array_equal(default.images, studio.images)
    np.testing.assert_array_equal(studio.images[2], SynthFaces(32, split="test", length=4, variant="studio")[2].image)


def test_an_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown synthfaces variant 'blond'"):
        SynthFaces(size=32, variant="blond")
