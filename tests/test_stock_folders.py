"""Stock diffusers folders: a DDPMPipeline trained by diffusers' own loop is a prior by path; `mcdm import` makes a
user's own conditional UNet a modality model; mismatches still name both models."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
from PIL import Image

from mcdm.checkpoint import load_model
from mcdm.cli import cli
from mcdm.compose import Composer
from mcdm.errors import CheckpointError, IncompatibleModelsError

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "synthfaces-32"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "inputs" / "face-0"


def train_stock(folder: Path, *, cond_channels: int = 0, steps: int = 3, seed: int = 0, **schedule) -> Path:
    """A few steps of diffusers' train_unconditional.py loop shape on random images, saved as a DDPMPipeline."""
    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=32, in_channels=3 + cond_channels, out_channels=3, block_out_channels=(8, 16),
                       layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=8)
    noise_scheduler = DDPMScheduler(num_train_timesteps=1000, **schedule)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    for _ in range(steps):
        clean = torch.rand(2, 3, 32, 32) * 2 - 1
        noise = torch.randn_like(clean)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (2,))
        noisy = noise_scheduler.add_noise(clean, noise, timesteps)
        if cond_channels:
            noisy = torch.cat([noisy, torch.rand(2, cond_channels, 32, 32)], dim=1)
        loss = torch.nn.functional.mse_loss(unet(noisy, timesteps).sample, noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    DDPMPipeline(unet=unet, scheduler=noise_scheduler).save_pretrained(folder)
    return folder


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_stock_pipeline_and_bare_unet_load_as_priors(tmp_path, plugins):
    pipeline = train_stock(tmp_path / "ddpm")
    assert not (pipeline / "mcdm.json").exists()
    prior = load_model(pipeline, plugins)
    assert prior.modality is None and prior.schedule_config["_class_name"] == "DDPMScheduler"
    assert prior.denoiser.sample_size == 32 and prior.prediction.value == "epsilon"
    bare = tmp_path / "bare"
    UNet2DModel.from_pretrained(pipeline / "unet").save_pretrained(bare)
    with pytest.raises(CheckpointError, match="scheduler_config.json.*noise schedule"):
        load_model(bare, plugins)
    (bare / "scheduler_config.json").write_text((pipeline / "scheduler" / "scheduler_config.json").read_text())
    x, t = torch.randn(1, 3, 32, 32), torch.tensor([10])
    assert torch.equal(load_model(bare, plugins).denoiser(x, t, None), prior.denoiser(x, t, None))


def test_stock_folders_keep_the_safetensors_guarantee(tmp_path, plugins):
    pipeline = train_stock(tmp_path / "ddpm")
    (pipeline / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match="pickle-format"):
        load_model(pipeline, plugins)
    conditional = train_stock(tmp_path / "conditional", cond_channels=1)
    with pytest.raises(CheckpointError, match="1 condition channel.*mcdm import"):
        load_model(conditional, plugins)


def test_stock_prior_composes_with_the_shipped_sketch_model_and_an_imported_unet(tmp_path):
    """The shipped sketch model, a stock DDPMPipeline prior by path and a stock conditional UNet after mcdm import."""
    train_stock(tmp_path / "stock-prior")
    mine = train_stock(tmp_path / "my-segmentation", cond_channels=20, seed=1)
    result = run("import", mine, "--modality", "sketch")
    assert result.exit_code == 2 and "reads 20 condition channel(s)" in result.output and "gives 1" in result.output
    assert not (mine / "mcdm.json").exists()
    result = run("import", mine, "--modality", "segmentation")
    assert result.exit_code == 0, result.output
    manifest = json.loads((mine / "mcdm.json").read_text())
    assert manifest["modality"] == "segmentation" and manifest["denoiser_config"]["cond_channels"] == 20
    assert (mine / "SHA256SUMS").is_file() and (mine / "scheduler_config.json").is_file()
    config = {"name": "stock", "prior": "stock-prior", "steps": 2, "scheduler": "ddim",
              "modalities": {"sketch": {"path": str(SHIPPED / "sketch")}, "segmentation": {"path": "my-segmentation"}}}
    (tmp_path / "composition.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out.png"
    result = run("generate", "--model", tmp_path, "--cond", f"sketch={EXAMPLE / 'sketch.png'}",
                 "--cond", f"segmentation={EXAMPLE / 'segmentation.png'}", "--num-images", 1, "--out", out)
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(out)).shape == (32, 32, 3)


def test_stock_schedule_mismatch_names_both_models(tmp_path, plugins):
    stock = load_model(train_stock(tmp_path / "cosine", beta_schedule="squaredcos_cap_v2"), plugins, name="stock")
    sketch = load_model(SHIPPED / "sketch", plugins, name="shipped-sketch")
    with pytest.raises(IncompatibleModelsError, match="'stock' and 'shipped-sketch': noise schedules differ"):
        Composer(stock, {"sketch": sketch}, plugins=plugins)


def test_import_refuses_what_it_cannot_read(tmp_path, plugins):
    (tmp_path / "empty").mkdir()
    assert "neither a DDPMPipeline" in run("import", tmp_path / "empty").output
    pipeline = train_stock(tmp_path / "ddpm")
    result = run("import", pipeline, "--modality", "text")  # text conditions another denoiser type
    assert result.exit_code == 2 and "conditions a 'unet_text' denoiser" in result.output
    assert not (pipeline / "mcdm.json").exists()
    (pipeline / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(CheckpointError, match="StableDiffusionPipeline folder without an mcdm.json"):
        load_model(pipeline, plugins)
