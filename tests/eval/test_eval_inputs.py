"""Input variants of the evaluation: partial inputs are what they say, reproducible, and scored where known."""

import numpy as np
import pytest

from mcdm.data import SynthFaces
from mcdm.data.captions import parse_caption
from mcdm.data.labels import UNKNOWN
from mcdm.eval.inputs import SCORED_ATTRIBUTES, targets_for


@pytest.fixture(scope="module")
def faces():
    split = SynthFaces(size=32, seed=0, split="test", length=12)
    return [split[i] for i in range(12)]


def test_full_inputs_are_the_faces_own(faces):
    for face, target in zip(faces, targets_for(faces, "full")):
        assert target.sketch is face.sketch and target.mask is face.mask and target.caption == face.captions[0]
        assert target.edge_region is None


def test_partial_inputs_hide_half_the_mask_half_the_strokes_and_all_but_one_attribute(faces):
    for face, target in zip(faces, targets_for(faces, "partial")):
        unknown = target.mask == UNKNOWN
        assert 0.45 < unknown.mean() < 0.55
        assert np.array_equal(target.mask[~unknown], face.mask[~unknown])
        kept = (target.sketch > 0).sum()
        assert kept <= 0.5 * (face.sketch > 0).sum() and np.all(face.sketch[target.sketch > 0] > 0)
        stated = [name for name in parse_caption(target.caption) if name in SCORED_ATTRIBUTES]
        assert len(stated) == 1, target.caption
        assert np.array_equal(target.edge_reference, face.sketch)  # scored against the whole face


def test_upper_face_inputs_keep_only_the_upper_face(faces):
    for face, target in zip(faces, targets_for(faces, "upper face")):
        upper = target.edge_region
        assert upper.dtype == bool and 0.2 < upper.mean() < 0.8
        assert (target.sketch[~upper] == 0).all() and np.array_equal(target.sketch[upper], face.sketch[upper])
        assert (target.mask[~upper] == UNKNOWN).all() and np.array_equal(target.mask[upper], face.mask[upper])


def test_variants_are_reproducible_and_differ_between_faces(faces):
    first, again = targets_for(faces, "partial", seed=3), targets_for(faces, "partial", seed=3)
    assert all(np.array_equal(a.mask, b.mask) and a.caption == b.caption for a, b in zip(first, again))
    other = targets_for(faces, "partial", seed=4)
    assert any(not np.array_equal(a.mask, b.mask) for a, b in zip(first, other))


def test_an_unknown_variant_is_refused(faces):
    with pytest.raises(ValueError, match="unknown input variant 'half'"):
        targets_for(faces, "half")


def test_each_modality_is_given_the_face_part_its_class_declares():
    from types import SimpleNamespace

    from mcdm.eval.evaluate import face_inputs
    from mcdm.eval.inputs import face_parts
    from mcdm.plugins import make_plugin_manager

    plugins = make_plugin_manager()
    names = ["sketch", "segmentation", "text", "joint"]
    assert face_parts(plugins, names) == {"sketch": ("sketch",), "segmentation": ("mask",), "text": ("caption",),
                                          "joint": ("sketch", "mask", "caption")}
    face = SynthFaces(size=32, seed=0, split="test", length=1)[0]
    for variant in ("full", "partial", "upper face", "eyeglasses"):
        (targets,) = targets_for([face], variant)
        given = face_inputs(face, targets, SimpleNamespace(plugins=plugins), names)
        assert given["sketch"] is targets.sketch and given["segmentation"] is targets.mask
        assert given["text"] == targets.caption
        joint = given["joint"]  # the mapping of its parts' inputs, each as its own modality is given it
        assert list(joint) == ["sketch", "segmentation", "text"]
        assert joint["sketch"] is targets.sketch and joint["segmentation"] is targets.mask
        assert joint["text"] == targets.caption
