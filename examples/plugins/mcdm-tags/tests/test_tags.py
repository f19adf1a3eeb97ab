import subprocess
import sys

import numpy as np
import pytest
import torch

from mcdm.errors import ConditionError
from mcdm.testing import ModalityConformance, extend_shipped, train_tiny
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


def test_importing_the_plugin_does_not_import_torch():
    code = "import sys, mcdm_tags; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_trains_and_composes_with_the_shipped_models(tmp_path):
    from mcdm.compose import Composer
    from mcdm.demo import EXAMPLES

    model = train_tiny("tags", tmp_path / "run", **TINY)
    folder = extend_shipped(tmp_path / "faces", {"tags": model})
    with pytest.raises(ConditionError, match="unknown tag 'wings'"):  # refused before the models load
        Composer.from_pretrained(folder, conditions={"tags": "wings"})
    composer = Composer.from_pretrained(folder)
    images = composer.generate_tensor({"tags": "female, hat", "text": (EXAMPLES / "face-0" / "text.txt").read_text()},
                                      num_images=2, steps=2, settings={"tags": {"baseline": "own"}}, progress=False)
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()
