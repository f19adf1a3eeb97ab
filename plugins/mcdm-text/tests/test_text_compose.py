"""The text model composed with a prior through mcdm's Composer: the caption steers the images."""

import pytest
import torch

from mcdm.checkpoint import load_model, save_model
from mcdm.combine import Baseline
from mcdm.compose import Composer
from mcdm.config import ModalityConfig
from mcdm.errors import ConditionError
from text_fixtures import one_thread, plugins, tiny_denoiser  # noqa: F401  (fixtures)

SIZE = 16
SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}
BLOND, BALD = "This woman has long blond hair.", "The man is bald and wears eyeglasses."


@pytest.fixture
def composer(tmp_path, plugins, tiny_denoiser):
    def build(**kwargs):
        torch.manual_seed(0)
        prior = plugins.denoiser_class("unet").build(sample_size=SIZE, image_channels=3, block_out_channels=(8, 16))
        save_model(tmp_path / "prior", prior, modality=None, schedule_config=SCHEDULE)
        save_model(tmp_path / "text", tiny_denoiser(SIZE, seed=1), modality="text", schedule_config=SCHEDULE)
        models = {"text": load_model(tmp_path / "text", plugins)}
        return Composer(load_model(tmp_path / "prior", plugins), models, plugins=plugins, steps=3, **kwargs)

    return build


def generate(composer, conditions, **kwargs):
    return composer.generate_tensor(conditions, **{"num_images": 2, "seed": 0, "progress": False, **kwargs})


def test_images_depend_on_the_caption(composer):
    c = composer()
    blond = generate(c, {"text": BLOND})
    assert blond.shape == (2, 3, SIZE, SIZE) and torch.isfinite(blond).all()
    assert torch.equal(blond, generate(c, {"text": BLOND}))
    assert (blond - generate(c, {"text": BALD})).abs().mean() > 1e-4
    assert (blond - generate(c, {})).abs().mean() > 1e-4


def test_own_baseline_encodes_each_caption_once_per_generation(composer):
    c = composer(settings={"text": ModalityConfig(path="", baseline=Baseline.OWN)})
    denoiser = c.models["text"].denoiser
    rows = []
    denoiser.text_encoder.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    images = generate(c, {"text": BLOND}, steps=4)
    assert torch.isfinite(images).all()
    assert rows == [2]  # the caption and the null caption, at the first step only


def test_bad_captions_are_refused_before_sampling(composer):
    c = composer()
    with pytest.raises(ConditionError, match="caption is empty"):
        generate(c, {"text": ""})
    with pytest.raises(ConditionError, match="tokens long"):
        generate(c, {"text": "blond " * 80})
