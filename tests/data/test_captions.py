import dataclasses
import numpy as np
import pytest

from mcdm.data.captions import (CAPTIONS_PER_SAMPLE, MAX_CONTRASTS, captions_for, contrast_captions,
                                 describable, parse_caption, partial_caption)
from mcdm.data.synthfaces import SynthFaces


@pytest.fixture(scope="module")
def attributes() -> list:
    faces = SynthFaces(size=32, seed=11, length=150)
    return [faces.attributes(i) for i in range(len(faces))]


def test_full_captions_state_every_describable_attribute_correctly(attributes):
    for i, a in enumerate(attributes):
        captions = captions_for(a, np.random.default_rng(i))
        assert len(captions) == CAPTIONS_PER_SAMPLE
        for caption in captions:
            parsed = parse_caption(caption)
            assert set(parsed) == set(describable(a)), caption
            assert parsed == {name: getattr(a, name) for name in parsed}, caption


def test_partial_captions_state_exactly_k_attributes(attributes):
    for i, a in enumerate(attributes):
        rng = np.random.default_rng(i)
        for k in (1, 2, 3, 5):
            caption = partial_caption(a, rng, k)
            parsed = parse_caption(caption)
            assert len(parsed) == k, caption
            assert parsed == {name: getattr(a, name) for name in parsed}, caption


def test_captions_are_deterministic_and_varied(attributes):
    a = attributes[0]
    assert captions_for(a, np.random.default_rng(5)) == captions_for(a, np.random.default_rng(5))
    assert len(set(captions_for(a, np.random.default_rng(5)))) > 1


def test_sample_captions_match_the_record():
    for sample in SynthFaces(size=32, seed=2, length=5):
        for caption in sample.captions:
            parsed = parse_caption(caption)
            assert parsed == {name: getattr(sample.attributes, name) for name in parsed}


def test_caption_style():
    a = SynthFaces(seed=0).attributes(0)
    caption = captions_for(a, np.random.default_rng(0), n=1)[0]
    subject = "woman" if a.gender == "female" else "man"
    assert caption.split()[1] == subject and caption.endswith(".")


def test_parse_reads_a_dataset_style_caption():
    parsed = parse_caption("This woman has blond hair and wears eyeglasses. She is smiling.")
    assert parsed == {"gender": "female", "hair_color": "blond", "eyeglasses": True, "smiling": True}
    assert parse_caption("The man has grey hair and does not wear a hat.")["hat"] is False


def test_partial_caption_needs_k_of_at_least_one(attributes):
    with pytest.raises(ValueError, match="k"):
        partial_caption(attributes[0], np.random.default_rng(0), 0)


@pytest.mark.parametrize("k", [1, 3, 20])
def test_a_contrast_caption_is_wrong_about_exactly_one_attribute(attributes, k):
    rng = np.random.default_rng(k)
    for a in attributes:
        caption = partial_caption(a, rng, k)
        stated, contrast = parse_caption(caption), parse_caption(contrast_captions(a, caption, rng, 1)[0])
        changed = [name for name in contrast if contrast[name] != getattr(a, name)]
        assert len(changed) == 1
        assert set(stated) <= set(contrast) <= set(stated) | set(changed)
        if set(stated) - {"gender", "hair_style", "face_shape"}:  # it states something changeable: that changes
            assert changed[0] in stated


def test_contrast_captions_are_each_wrong_about_a_different_attribute(attributes):
    rng = np.random.default_rng(0)
    for a in attributes:
        caption = partial_caption(a, rng, 2)
        changed = []
        for contrast in contrast_captions(a, caption, rng, 8):
            parsed = parse_caption(contrast)
            [name] = [n for n in parsed if parsed[n] != getattr(a, n)]
            changed.append(name)
        assert len(set(changed)) == 8
        stated = [n for n in parse_caption(caption) if n in changed]
        assert set(changed[:len(stated)]) == set(stated)  # what the caption states is contradicted first
    with pytest.raises(ValueError, match="k must be between 1 and"):
        contrast_captions(attributes[0], caption, rng, 0)
    # a bald woman has the fewest changeable attributes: exactly MAX_CONTRASTS
    bald_woman = dataclasses.replace(attributes[0], gender="female", hair_style="bald", bangs=False, beard=False)
    assert len(contrast_captions(bald_woman, "A woman.", rng, MAX_CONTRASTS)) == MAX_CONTRASTS
    with pytest.raises(ValueError, match=f"k must be between 1 and {MAX_CONTRASTS} for this face"):
        contrast_captions(bald_woman, "A woman.", rng, MAX_CONTRASTS + 1)
