
import numpy as np
import pytest
import torch

from mcdm.errors import ConditionError
from mcdm.testing import ModalityConformance, check_composes_with_shipped
from mcdm_hair.modality import NULL_LABEL, HairModality

TINY = {"block_out_channels": [8, 16], "layers_per_block": 1, "attention": False}
pytestmark = pytest.mark.filterwarnings("ignore::mcdm.errors.UnverifiedModelWarning")


class TestHairConformance(ModalityConformance):
    modality_name = "hair"

    def valid_inputs(self):
        return ["blond", "black", 3]


def test_a_label_is_a_0_dim_long_id_and_the_null_label_is_none_of_them():
    modality = HairModality()
    labels = [modality.prepare(colour, size=32) for colour in ("black", "brown", "blond", "red", " Gray ")]
    assert [int(label) for label in labels] == [0, 1, 2, 3, 4]
    assert all(label.shape == () and label.dtype == torch.int64 for label in labels)
    assert int(modality.null_condition(labels[0])) == NULL_LABEL == 5


@pytest.mark.parametrize("raw", ["green", "", 5, -1, True, 2.0, None])
def test_bad_labels(raw):
    with pytest.raises(ConditionError, match="hair: expected one of black, brown, blond, red, gray"):
        HairModality().prepare(raw, size=32)


def test_trains_on_the_face_attributes():
    from mcdm.data.synthfaces import SynthFaces

    sample = SynthFaces(size=32, seed=0, split="train", length=1)[0]
    assert HairModality().condition_from_sample(sample, np.random.default_rng(0)) == sample.attributes.hair_color


def test_trains_and_composes_with_the_shipped_models(tmp_path):
    from mcdm.demo import EXAMPLES

    check_composes_with_shipped("hair", tmp_path, {"hair": "red", "sketch": EXAMPLES / "face-0" / "sketch.png"},
                                refused=("green", "hair: expected one of"), **TINY)
