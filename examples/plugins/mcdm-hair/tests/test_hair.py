import subprocess
import sys

import numpy as np
import pytest
import torch

from mcdm.errors import ConditionError
from mcdm.testing import ModalityConformance, extend_shipped, train_tiny
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


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, mcdm_hair; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_trains_and_composes_with_the_shipped_models(tmp_path):
    from mcdm.compose import Composer
    from mcdm.demo import EXAMPLES

    model = train_tiny("hair", tmp_path / "run", **TINY)
    folder = extend_shipped(tmp_path / "faces", {"hair": model})
    with pytest.raises(ConditionError, match="hair: expected one of"):  # refused before the models load
        Composer.from_pretrained(folder, conditions={"hair": "green"})
    composer = Composer.from_pretrained(folder)
    images = composer.generate_tensor({"hair": "red", "sketch": EXAMPLES / "face-0" / "sketch.png"}, num_images=2,
                                      steps=2, progress=False)
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()
