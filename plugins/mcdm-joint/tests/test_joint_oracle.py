"""The joint oracle: one condition packing sketch, mask and caption; a denoiser that answers to each part."""

import json

import numpy as np
import pytest
import torch

from mcdm.checkpoint import load_model, save_model
from mcdm.data import SynthFaces
from mcdm.errors import ConditionError
from mcdm.modality import Modality
from mcdm.plugins import make_plugin_manager
from mcdm.testing import ModalityConformance
from mcdm_joint.modality import JointModality

SIZE = 32
SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "linear"}
TINY = {"block_out_channels": (8, 16), "attention_head_dim": 2,
        "text_cfg": {"context_length": 64, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def plugins():
    return make_plugin_manager(strict=True)


@pytest.fixture(scope="module")
def face():
    return SynthFaces(size=SIZE, seed=0, split="test", length=2)[0]


@pytest.fixture(scope="module")
def joint(plugins):
    return plugins.modality("joint")


def inputs(face):
    return {"sketch": face.sketch, "segmentation": face.mask, "text": face.captions[0]}


class TestJointConformance(ModalityConformance):
    modality_name = "joint"

    def valid_inputs(self):
        a, b = SynthFaces(size=SIZE, seed=0, split="test", length=2)
        return [inputs(a), {"text": b.captions[0]}]


def test_parts_are_packed_as_each_modality_prepares_them(plugins, joint, face):
    cond = joint.prepare(inputs(face), size=SIZE)
    assert cond.shape == (1 + 20 + 1, SIZE, SIZE)
    assert torch.equal(cond[:1], plugins.modality("sketch").prepare(face.sketch, size=SIZE))
    assert torch.equal(cond[1:-1], plugins.modality("segmentation").prepare(face.mask, size=SIZE))
    tokens = plugins.modality("text").prepare(face.captions[0], size=SIZE)
    assert torch.equal(cond[-1].flatten()[:64].long(), tokens)
    assert (cond[-1].flatten()[64:] == 0).all()


def test_a_missing_part_is_that_modalitys_null_condition(joint, face):
    full = joint.prepare(inputs(face), size=SIZE)
    null = joint.null_condition(full)
    only_text = joint.prepare({"text": face.captions[0]}, size=SIZE)
    assert torch.equal(only_text[:-1], null[:-1])  # no sketch (zeros), mask unknown everywhere
    assert torch.equal(only_text[-1], full[-1])
    assert torch.equal(joint.prepare({}, size=SIZE), null)


@pytest.mark.parametrize("raw, message", [("a caption", "expected a mapping"),
                                          ({"thumbnail": np.zeros((32, 32, 3), np.uint8)}, "unknown parts")])
def test_bad_joint_inputs_are_refused(joint, raw, message):
    with pytest.raises(ConditionError, match=message):
        joint.prepare(raw, size=SIZE)


def test_training_conditions_leave_parts_out(joint, face):
    rng = np.random.default_rng(0)
    drawn = [joint.condition_from_sample(face, rng) for _ in range(200)]
    counts = {part: sum(part in d for d in drawn) for part in ("sketch", "segmentation", "text")}
    assert all(150 < c < 200 for c in counts.values()), counts  # about 90% each


def test_denoiser_answers_to_every_part_and_round_trips(plugins, joint, face, tmp_path):
    cls = plugins.denoiser_class("unet_joint")
    torch.manual_seed(0)
    denoiser = cls.build(sample_size=SIZE, cond_channels=21, **TINY).eval()
    full = joint.prepare(inputs(face), size=SIZE)
    x, t = torch.randn(1, 3, SIZE, SIZE), torch.tensor([500])
    with torch.no_grad():
        reference = denoiser(x, t, full[None])
        for part in ("sketch", "segmentation", "text"):
            without = joint.prepare({k: v for k, v in inputs(face).items() if k != part}, size=SIZE)
            assert (denoiser(x, t, without[None]) - reference).abs().max() > 1e-6, part
    save_model(tmp_path / "joint", denoiser, modality="joint",
               schedule_config={"num_train_timesteps": 1000, "beta_schedule": "linear"}, prediction="v_prediction")
    loaded = load_model(tmp_path / "joint", plugins).denoiser.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, t, full[None]), reference, rtol=0, atol=1e-5)
    with pytest.raises(ConditionError, match="joint condition"):
        denoiser(x, t, full[None, :-1])


def test_a_joint_folder_as_training_writes_it_predicts_as_its_two_networks(plugins, joint, face, tmp_path):
    """A ``unet_joint`` folder written without this plugin (a diffusers UNet with 21 more inputs, a text tower, the
    manifest) loads and predicts exactly what its UNet gives for x_t with the image parts, reading the caption."""
    from mcdm_text.clip import build_text_encoder, save_text_encoder
    from mcdm_text.denoiser import make_unet

    torch.manual_seed(0)
    unet = make_unet(SIZE, 3, (8, 16), 1, 2, cross_attention_dim=32, extra_in_channels=21).eval()
    encoder = build_text_encoder(TINY["text_cfg"]).eval()
    folder = tmp_path / "joint"
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    save_text_encoder(encoder, TINY["text_cfg"], folder / "text_encoder")
    config = {"sample_size": SIZE, "image_channels": 3, "block_out_channels": [8, 16], "layers_per_block": 1,
              "attention_head_dim": 2, "pooled_text": False, "text_cfg": TINY["text_cfg"], "cond_channels": 21}
    (folder / "mcdm.json").write_text(json.dumps({"format": 1, "denoiser": "unet_joint", "denoiser_config": config,
                                                  "modality": "joint", "prediction_type": "epsilon", "space": "pixel"}))
    (folder / "scheduler_config.json").write_text(json.dumps(SCHEDULE))

    loaded = load_model(folder, plugins).denoiser.eval()
    cond = joint.prepare(inputs(face), size=SIZE)[None]
    x, t = torch.randn(2, 3, SIZE, SIZE), torch.tensor(500)
    with torch.no_grad():
        _, states = encoder(cond[:, -1].flatten(1)[:, :64].long())
        expected = unet(torch.cat([x, cond[:, :-1].expand(2, -1, -1, -1)], dim=1), t,
                        encoder_hidden_states=states.expand(2, -1, -1)).sample
        assert torch.equal(loaded(x, t, cond), expected)
    assert loaded.config() == config


class TwoChannelMask(Modality):
    """A stand-in segmentation modality whose denoiser would read two channels."""

    name, denoiser_type = "segmentation", "unet"

    def prepare(self, raw, *, size):
        return torch.ones(2, size, size)

    def null_condition(self, condition):
        return torch.full_like(condition, -1.0)

    def denoiser_config(self, *, sample_size, image_channels):
        return {"cond_channels": 2}


def test_the_layout_and_nulls_come_from_the_registered_parts(plugins):
    joint = JointModality({"sketch": plugins.modality("sketch"), "segmentation": TwoChannelMask(),
                           "text": plugins.modality("text")})
    null = joint.prepare({}, size=SIZE)
    assert null.shape == (1 + 2 + 1, SIZE, SIZE)
    assert (null[0] == 0).all() and (null[1:3] == -1).all()
    assert torch.equal(joint.null_condition(joint.prepare({"segmentation": "any"}, size=SIZE)), null)
    assert joint.denoiser_config(sample_size=SIZE, image_channels=3)["cond_channels"] == 3
