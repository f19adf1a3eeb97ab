"""Fused calls (mcdm.fused): models of one architecture in one vmapped call give the unfused eps."""

import numpy as np
import pytest
import torch

from conftest import SIZE, TEST_DEVICE
from mcdm.errors import ConfigError


pytestmark = pytest.mark.usefixtures("full_fp32")
MAPS = {name: np.random.default_rng(i).random((SIZE, SIZE)) for i, name in enumerate(("toy_a", "toy_b", "toy_c"))}


def eps_at(composer, conditions, settings=None, t=500):
    predictor = composer.predictor(conditions, num_images=3, settings=settings)
    size = composer.sample_size
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(1)).to(composer.device)
    with torch.inference_mode():
        return predictor(x, torch.tensor(t))


@pytest.mark.parametrize("baseline", ["shared", "own"])
def test_fused_and_unfused_eps_agree(toy_composer, baseline):
    fused = toy_composer(names=("toy_a", "toy_b", "toy_c"), fuse="always", device=TEST_DEVICE)
    unfused = toy_composer(names=("toy_a", "toy_b", "toy_c"), fuse="never", device=TEST_DEVICE)
    assert len(set(map(id, fused.fused.values()))) == 1 and len(fused.fused) == 4  # the prior and the three
    assert unfused.fused == {}
    settings = {name: {"baseline": baseline} for name in MAPS}
    settings["toy_b"]["weight"] = -0.5
    torch.testing.assert_close(eps_at(fused, MAPS, settings), eps_at(unfused, MAPS, settings), rtol=1e-5, atol=1e-5)


def test_fused_sampling_gives_the_unfused_images(toy_composer):
    run = lambda fuse: toy_composer(names=("toy_a", "toy_b"), fuse=fuse, device=TEST_DEVICE).generate_tensor(  # noqa: E731
        {k: MAPS[k] for k in ("toy_a", "toy_b")}, num_images=2, steps=3, seed=4, progress=False,
        settings={"toy_a": {"start": 0.5}})  # a window: the fused set changes during sampling
    # the eps agree to 1e-5 (above); the first steps divide x_0's estimate by sqrt(alpha_bar_T) (1/157 here), so
    # float rounding of a vmapped call reaches ~1e-4 in the images on some CPUs: a wrong fused term moves them by 0.1
    torch.testing.assert_close(run("always"), run("never"), rtol=1e-3, atol=1e-3)


def test_different_conv_in_widths_fuse_and_other_architectures_stay_unfused(make_model, plugins):
    from mcdm.checkpoint import load_model
    from mcdm.compose import Composer

    prior = load_model(make_model(None), plugins)  # 3 input channels, the toys 4
    models = {"toy_a": load_model(make_model("toy_a"), plugins),
              "toy_b": load_model(make_model("toy_b", seed=2), plugins)}
    wide = plugins.denoiser_class("unet").build(sample_size=SIZE, cond_channels=1, block_out_channels=(8, 32),
                                               layers_per_block=1, attention=False)
    models["toy_b"].denoiser = wide  # another architecture: called on its own
    composer = Composer(prior, models, plugins=plugins, steps=2, fuse="always")
    assert set(composer.fused) == {id(prior.denoiser), id(models["toy_a"].denoiser)}
    unfused = Composer(prior, models, plugins=plugins, steps=2, fuse="never")
    conditions = {k: MAPS[k] for k in models}
    torch.testing.assert_close(eps_at(composer, conditions), eps_at(unfused, conditions), rtol=1e-5, atol=1e-5)


def test_auto_fuses_off_the_cpu_only_and_unknown_settings_are_refused(toy_composer):
    assert toy_composer(names=("toy_a",), fuse="auto").fused == {}
    with pytest.raises(ConfigError, match="unknown fuse setting 'yes'"):
        toy_composer(names=("toy_a",), fuse="yes")


def test_shipped_prior_sketch_and_segmentation_fuse_with_the_same_eps():
    from mcdm.compose import Composer
    from mcdm.demo import EXAMPLES

    face = EXAMPLES / "face-1"
    conditions = {"sketch": face / "sketch.png", "segmentation": face / "segmentation.png", "text": "He is smiling."}
    fused = Composer.from_pretrained("synthfaces-32", ["fuse=always"], device=TEST_DEVICE)
    unfused = Composer.from_pretrained("synthfaces-32", ["fuse=never"], device=TEST_DEVICE)
    names = {id(fused.prior.denoiser): "prior", **{id(m.denoiser): n for n, m in fused.models.items()}}
    assert sorted(names[i] for i in fused.fused) == ["prior", "segmentation", "sketch"]  # text: its own architecture
    torch.testing.assert_close(eps_at(fused, conditions, t=700), eps_at(unfused, conditions, t=700),
                               rtol=1e-4, atol=1e-4)
