"""The judges on tiny randomly initialised networks: inputs, outputs, save/load, errors."""

import json

import numpy as np
import pytest
import torch

from mcdm.data import SynthFaces
from mcdm.data.attributes import HAIR_COLORS
from mcdm.errors import CheckpointError
from mcdm.eval.judges import (
    ATTRIBUTE_HEADS,
    IGNORE_TARGET,
    AttributeJudge,
    Judges,
    ParsingJudge,
    attribute_targets,
    judge_input,
)

TINY = [4, 4, 8, 8]


def tiny_judge(judge_class):
    """A seeded tiny judge whose batch-norm running statistics have non-default values, so a round trip that
    dropped them would show."""
    torch.manual_seed(0)
    judge = judge_class.build(channels=TINY)
    judge.net.train()
    with torch.no_grad():
        judge.net(torch.randn(4, 3, 32, 32))
    judge.net.eval()
    return judge


@pytest.fixture(scope="module")
def faces():
    return [SynthFaces(size=32, split="test", length=3)[i] for i in range(3)]


@pytest.fixture
def parsing_judge():
    return tiny_judge(ParsingJudge)


@pytest.fixture
def attribute_judge():
    return tiny_judge(AttributeJudge)


def test_judge_input_accepts_uint8_and_float_forms(faces):
    images = np.stack([f.image for f in faces])
    x = judge_input(images)
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(judge_input(torch.from_numpy(images)), x)
    torch.testing.assert_close(judge_input([f.image for f in faces]), x)
    torch.testing.assert_close(judge_input(images[0]), x[:1])
    torch.testing.assert_close(judge_input(x), x)
    torch.testing.assert_close(judge_input(x * 1.2), x.mul(1.2).clamp(-1, 1))  # a sampler's overshoot is clipped


def test_judge_input_rejects_wrong_range_size_and_layout(faces):
    images = np.stack([f.image for f in faces])
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        judge_input(torch.from_numpy(images).permute(0, 3, 1, 2).float())  # [0, 255] floats
    with pytest.raises(ValueError, match="32x32"):
        judge_input(np.zeros((1, 64, 64, 3), np.uint8), size=32)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        judge_input(np.zeros((1, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="dtype"):
        judge_input(np.zeros((1, 32, 32, 3), np.int32))


def test_parse_gives_one_uint8_label_map_per_image(parsing_judge, faces):
    masks = parsing_judge.parse(np.stack([f.image for f in faces]))
    assert isinstance(masks, np.ndarray) and masks.dtype == np.uint8 and masks.shape == (3, 32, 32)
    assert masks.max() < 19
    assert parsing_judge.parse(faces[0].image).shape == (1, 32, 32)
    assert parsing_judge.logits(faces[0].image).shape == (1, 19, 32, 32)


def test_predict_and_features(attribute_judge, faces):
    images = np.stack([f.image for f in faces])
    predictions = attribute_judge.predict(images)
    assert isinstance(predictions, list) and len(predictions) == 3
    for prediction in predictions:
        assert list(prediction) == list(ATTRIBUTE_HEADS)
        assert prediction["hair_color"] in HAIR_COLORS
        assert prediction["gender"] in ("female", "male")
        assert all(isinstance(prediction[n], bool) for n in ("eyeglasses", "smiling", "hat", "beard"))
    features = attribute_judge.features(images)
    assert isinstance(features, np.ndarray) and features.dtype == np.float32
    assert features.shape == (3, attribute_judge.feature_dim) == (3, TINY[-1])
    # uint8 images and the same images as [-1, 1] tensors read the same
    np.testing.assert_allclose(attribute_judge.features(judge_input(images)), features, rtol=1e-5, atol=1e-6)


def test_a_face_larger_than_the_judge_is_read_as_its_area_average(parsing_judge, attribute_judge):
    """A 64x64 face is judged as its 2x2 means at the judges' 32x32; its label map comes back at 64x64, each
    label over the square it was averaged from. A size that does not average down is refused."""
    large = np.stack([f.image for f in [SynthFaces(size=64, split="test", length=2)[i] for i in range(2)]])
    averaged = torch.nn.functional.avg_pool2d(judge_input(large), 2)
    np.testing.assert_allclose(attribute_judge.features(large), attribute_judge.features(averaged), rtol=1e-5,
                               atol=1e-6)
    assert attribute_judge.predict(large) == attribute_judge.predict(averaged)
    small = parsing_judge.parse(averaged)
    masks = parsing_judge.parse(large)
    assert masks.shape == (2, 64, 64)
    np.testing.assert_array_equal(masks, small.repeat(2, axis=1).repeat(2, axis=2))
    with pytest.raises(ValueError, match="a multiple of that size"):
        parsing_judge.parse(np.zeros((1, 48, 48, 3), np.uint8))


def test_save_load_round_trip_gives_identical_outputs(tmp_path, parsing_judge, attribute_judge, faces):
    images = np.stack([f.image for f in faces])
    parsing_judge.save(tmp_path / "parsing")
    attribute_judge.save(tmp_path / "attributes")
    assert sorted(p.name for p in (tmp_path / "parsing").iterdir()) == ["config.json", "model.safetensors"]
    parsing = ParsingJudge.load(tmp_path / "parsing")
    attributes = AttributeJudge.load(tmp_path / "attributes")
    assert torch.equal(parsing.logits(images), parsing_judge.logits(images))
    np.testing.assert_array_equal(parsing.parse(images), parsing_judge.parse(images))
    assert attributes.predict(images) == attribute_judge.predict(images)
    np.testing.assert_array_equal(attributes.features(images), attribute_judge.features(images))
    assert attributes.config == json.loads(json.dumps(attribute_judge.config))

    both = Judges.load(Judges(parsing, attributes).save(tmp_path / "both"))
    np.testing.assert_array_equal(both.parsing.parse(images), parsing_judge.parse(images))


def test_load_errors_name_the_folder(tmp_path, parsing_judge):
    with pytest.raises(CheckpointError, match="judge folder .*nowhere' does not exist"):
        ParsingJudge.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a judge folder: config.json is missing"):
        ParsingJudge.load(tmp_path / "empty")
    parsing_judge.save(tmp_path / "parsing")
    with pytest.raises(CheckpointError, match="expected a 'attributes' judge"):
        AttributeJudge.load(tmp_path / "parsing")
    (tmp_path / "parsing" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="safetensors"):
        ParsingJudge.load(tmp_path / "parsing")
    config = json.loads((tmp_path / "parsing" / "config.json").read_text())
    ParsingJudge.build(channels=[4, 4, 8, 16]).save(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not match"):
        ParsingJudge.load(tmp_path / "other")
    with pytest.raises(CheckpointError, match="does not exist"):
        Judges.load(tmp_path / "missing")


def test_attribute_targets_leave_out_undefined_attributes():
    faces = SynthFaces(size=32, split="train", length=400)
    records = [faces.attributes(i) for i in range(400)]
    bald = next(a for a in records if a.hair_style == "bald")
    woman = next(a for a in records if a.gender == "female" and a.hair_style != "bald")
    assert attribute_targets(bald)["hair_color"] == IGNORE_TARGET
    assert attribute_targets(woman)["beard"] == IGNORE_TARGET
    targets = attribute_targets(woman)
    assert targets["hair_color"] == HAIR_COLORS.index(woman.hair_color)
    assert targets["gender"] == 0 and targets["smiling"] == int(woman.smiling)
