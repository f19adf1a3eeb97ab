"""init_from: a new denoiser starts from a model folder's weights, matched by name and shape."""

from pathlib import Path

import pytest
import torch

from conftest import ddpm_schedule
from mcdm.checkpoint import load_model, save_model
from mcdm.errors import CheckpointError, ConfigError
from mcdm.schedule import Prediction
from mcdm.train import DataConfig, TrainConfig, train
from mcdm.warm_start import warm_start

SMALL = {"sample_size": 32, "block_out_channels": (8, 16), "layers_per_block": 1, "attention": False}
pytestmark = pytest.mark.filterwarnings("ignore::mcdm.errors.UnverifiedModelWarning")


@pytest.fixture
def prior(tmp_path, plugins):
    torch.manual_seed(1)
    return save_model(tmp_path / "prior", plugins.denoiser_class("unet").build(**SMALL), modality=None,
                      schedule_config=ddpm_schedule(), prediction=Prediction.V)


def output(denoiser, cond):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return denoiser.eval()(x, torch.tensor(400), cond)


def test_extra_condition_channels_start_at_zero_so_the_new_model_begins_as_the_folders(prior, plugins):
    new = plugins.denoiser_class("unet").build(cond_channels=4, **SMALL)
    report = warm_start(new, prior, plugins, schedule=ddpm_schedule(), prediction=Prediction.V)
    assert "widened unet.conv_in.weight (3 -> 7 input channels, the extra ones 0)" in report
    assert (new.unet.conv_in.weight[:, 3:] == 0).all()
    source = load_model(prior, plugins).denoiser
    torch.testing.assert_close(output(new, torch.randn(1, 4, 32, 32)), output(source, None))


def test_a_label_embedding_the_folder_lacks_keeps_its_fresh_initialisation(prior, plugins):
    from mcdm.embedding_denoiser import EmbeddingUNetDenoiser

    new = EmbeddingUNetDenoiser.build(condition_dim=6, **SMALL)
    fresh = new.embedding.weight.clone()
    report = warm_start(new, prior, plugins, schedule=ddpm_schedule(), prediction=Prediction.V)
    assert report.endswith("freshly initialised: embedding.weight")
    assert torch.equal(new.embedding.weight, fresh)
    source = load_model(prior, plugins).denoiser.unet.state_dict()
    assert all(torch.equal(v, source[k]) for k, v in new.unet.state_dict().items())


def test_mismatched_tensors_are_one_error_naming_them(prior, plugins):
    new = plugins.denoiser_class("unet").build(**{**SMALL, "block_out_channels": (8, 32)})
    with pytest.raises(ConfigError, match=r"does not fit the new unet denoiser: "
                       r"unet\.down_blocks\.1\.resnets\.0\.conv1\.weight \(16, 8, 3, 3\) vs \(32, 8, 3, 3\), .* and \d+ more$"):
        warm_start(new, prior, plugins, schedule=ddpm_schedule(), prediction=Prediction.V)


def test_another_parameterisation_or_schedule_is_refused(prior, plugins):
    new = plugins.denoiser_class("unet").build(**SMALL)
    with pytest.raises(ConfigError, match="predicts v_prediction, this run trains epsilon"):
        warm_start(new, prior, plugins, schedule=ddpm_schedule(), prediction=Prediction.EPSILON)
    with pytest.raises(ConfigError, match="another noise schedule"):
        warm_start(new, prior, plugins, schedule=ddpm_schedule(beta_end=0.03), prediction=Prediction.V)


def test_train_starts_from_init_from_and_the_ema_from_it(prior, plugins, tmp_path):
    config = TrainConfig(out=str(tmp_path / "run"), modality="sketch", init_from=str(prior), steps=1, batch_size=2,
                         data=DataConfig(size=32, length=8), denoiser=dict(SMALL), lr=1e-12, warmup_steps=0,
                         sample_every=0, checkpoint_every=1, condition_dropout=0.0)
    model = load_model(train(config, progress=False), plugins)
    source = load_model(prior, plugins).denoiser.unet.state_dict()
    weights = model.denoiser.unet.state_dict()
    assert torch.allclose(weights["conv_in.weight"][:, :3], source["conv_in.weight"], atol=1e-6)
    assert weights["conv_in.weight"][:, 3:].abs().max() < 1e-6  # zeros, moved by one step at lr 1e-12
    with pytest.raises(CheckpointError, match="is not an mcdm model folder"):
        train(TrainConfig(**{**config.__dict__, "out": str(tmp_path / "other"),
                             "init_from": str(Path(prior).parent)}), progress=False)
