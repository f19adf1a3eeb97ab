"""The shipped judges (pretrained/judges-32) read a few held-out faces well. Skipped when not shipped."""

from pathlib import Path

import numpy as np
import pytest

from mcdm.data import SynthFaces
from mcdm.data.captions import parse_caption
from mcdm.eval.metrics import attribute_accuracy, mean_iou_batch

JUDGES = Path(__file__).resolve().parents[2] / "pretrained" / "judges-32"

pytestmark = pytest.mark.skipif(not (JUDGES / "parsing").is_dir(), reason="pretrained/judges-32 is not shipped")


@pytest.fixture(scope="module")
def judges():
    from mcdm.eval.judges import Judges

    return Judges.load(JUDGES)


@pytest.fixture(scope="module")
def held_out():
    return [SynthFaces(size=32, seed=0, split="test", length=16)[i] for i in range(16)]


def test_shipped_parsing_judge_reads_held_out_faces(judges, held_out):
    masks = judges.parsing.parse(np.stack([f.image for f in held_out]))
    assert mean_iou_batch(masks, np.stack([f.mask for f in held_out])) > 0.8


def test_shipped_attribute_judge_agrees_with_captions(judges, held_out):
    predictions = judges.attributes.predict(np.stack([f.image for f in held_out]))
    correct = total = 0
    for prediction, face in zip(predictions, held_out):
        c, t = attribute_accuracy(prediction, parse_caption(face.captions[0]))
        correct, total = correct + c, total + t
    assert total > 16 * 4 and correct / total > 0.85
