
import numpy as np
import pytest
import torch

from mcdm.errors import ConditionError
from mcdm.testing import ModalityConformance, check_composes_with_shipped
from mcdm_tags.modality import CONTEXT_LENGTH, PAD, START, TAGS, VOCAB, TagsModality

TINY = {"block_out_channels": [8, 16], "layers_per_block": 1, "attention_head_dim": 2, "width": 16}
pytestmark = pytest.mark.filterwarnings("ignore::mcdm.errors.UnverifiedModelWarning")


class TestTagsConformance(ModalityConformance):
    modality_name = "tags"

    def valid_inputs(self):
        return ["female, eyeglasses", ["male", "beard", "hat"], "smiling"]


def test_tags_are_start_then_one_id_each_in_order_then_padding():
    tokens = TagsModality().prepare("Female,  hat eyeglasses", size=32)
    assert tokens.dtype == torch.int64 and tokens.shape == (CONTEXT_LENGTH,)
    assert tokens.tolist() == [START, VOCAB["female"], VOCAB["hat"], VOCAB["eyeglasses"]] + [PAD] * 5
    null = TagsModality().null_condition(tokens)
    assert (null == PAD).all()


@pytest.mark.parametrize("raw, message", [
    ("wings", "unknown tag 'wings'"), ("hat, hat", "given twice"), ("", "expected 1 to 8 tags"),
    (list(TAGS), "expected 1 to 8 tags"), (3, "expected a string"),
])
def test_bad_tags(raw, message):
    with pytest.raises(ConditionError, match=f"tags: .*{message}"):
        TagsModality().prepare(raw, size=32)


def test_trains_on_the_faces_own_tags_in_any_order():
    from mcdm.data.synthfaces import SynthFaces

    faces = SynthFaces(size=32, seed=0, split="train", length=16)
    rng = np.random.default_rng(0)
    for face in faces:
        tags = TagsModality().condition_from_sample(face, rng)
        assert tags and all(t == face.attributes.gender or getattr(face.attributes, t) is True for t in tags)
        TagsModality().prepare(tags, size=32)


def test_trains_and_composes_with_the_shipped_models(tmp_path):
    from mcdm.demo import EXAMPLES

    caption = (EXAMPLES / "face-0" / "text.txt").read_text()
    check_composes_with_shipped("tags", tmp_path, {"tags": "female, hat", "text": caption},
                                refused=("wings", "unknown tag 'wings'"), settings={"tags": {"baseline": "own"}},
                                **TINY)
