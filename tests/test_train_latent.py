"""Training in a VAE's latent space (``vae=``): latent model folders that load, compose and decode; resume; errors."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from mcdm.checkpoint import load_model, write_checksums
from mcdm.cli import cli
from mcdm.compose import Composer
from mcdm.config import load_config
from mcdm.data.synthfaces import SynthFaces
from mcdm.latent import load_vae, vae_id
from mcdm.train import TrainConfig, export_checkpoint, train

SIZE = 32  # image side (synthfaces: 32 and up); the VAE's scale is 2, so the denoisers work on 4 x 16 x 16 latents
TINY = [
    f"data.size={SIZE}", "data.length=16", "batch_size=2", "lr_schedule=constant", "warmup_steps=1",
    "denoiser.block_out_channels=[8,16]", "denoiser.layers_per_block=1", "denoiser.attention=false",
    "checkpoint_every=2", "sample_every=0", "mixed_precision=fp32", "threads=1", "log_every=1",
]


def write_vae(folder: Path, *, seed: int = 0, **config) -> Path:
    """A tiny random AutoencoderKL (scale 2, 4 latent channels), saved as a user's is (config.json + safetensors)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                  layers_per_block=1, norm_num_groups=4, sample_size=SIZE, **config).save_pretrained(folder)
    return folder


def config(out: Path, vae: Path, *extra: str) -> TrainConfig:
    return load_config(TrainConfig, None, [f"out={out}", f"vae={vae}", *TINY, *extra])


def losses(run: Path) -> list[tuple[str, str]]:
    with open(run / "log.csv") as f:
        return [(r["step"], r["loss"]) for r in csv.DictReader(f)]


def ema_weights(run: Path, step: int) -> dict:
    return load_file(run / "checkpoints" / f"step-{step:07d}" / "ema.safetensors")


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    return write_vae(tmp_path_factory.mktemp("vae") / "vae")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, vae):
    """A prior and a sketch model trained two steps on the VAE's latents, each writing a sample grid."""
    runs = tmp_path_factory.mktemp("runs")
    for name, modality in (("prior", []), ("sketch", ["modality=sketch"])):
        train(config(runs / name, vae, "steps=2", "sample_every=2", *modality), progress=False)
    return runs


def test_a_latent_run_writes_a_latent_model_folder_with_its_vae(trained, vae, plugins):
    for name, modality in (("prior", None), ("sketch", "sketch")):
        folder = trained / name / "model"
        manifest = json.loads((folder / "mcdm.json").read_text())
        assert (manifest["space"], manifest["vae"]) == ("latent", "vae")
        copied = sorted(p.name for p in (folder / "vae").iterdir())
        assert copied == ["config.json", "diffusion_pytorch_model.safetensors"]
        model = load_model(folder, plugins)
        assert model.modality == modality
        assert (model.denoiser.sample_size, model.denoiser.image_channels) == (SIZE // 2, 4)
        assert model.signature().space == f"latent:{vae_id(vae)}"  # the copy is the same VAE as the one trained on


def test_the_training_sample_grid_is_decoded_at_image_size(trained):
    for name in ("prior", "sketch"):
        grid = Image.open(trained / name / "samples" / "step-0000002.png")
        pad = 2  # mcdm.imageio.grid: 8 held-out faces above 8 samples
        assert grid.size == (8 * (SIZE + pad) + pad, 2 * (SIZE + pad) + pad)


def test_the_latent_prior_and_sketch_model_compose_and_decode_to_images(trained, tmp_path):
    for name in ("prior", "sketch"):
        shutil.copytree(trained / name / "model", tmp_path / name)
    (tmp_path / "composition.yaml").write_text(yaml.safe_dump(
        {"name": "latent", "prior": "prior", "steps": 3, "modalities": {"sketch": {"path": "sketch"}}}))
    write_checksums(tmp_path)
    composer = Composer.from_pretrained(tmp_path)
    assert composer.latent is not None and (composer.sample_size, composer.image_size) == (SIZE // 2, SIZE)
    sketch = SynthFaces(size=SIZE, seed=0, split="test", length=1)[0].sketch
    with_sketch = composer.generate_tensor({"sketch": sketch}, num_images=2, progress=False)
    prior_only = composer.generate_tensor({}, num_images=2, progress=False)
    assert with_sketch.shape == (2, 3, SIZE, SIZE) and torch.isfinite(with_sketch).all()
    assert not torch.equal(with_sketch, prior_only)  # the sketch model's term reached the latents


def test_encode_is_the_posterior_mean_scaled_as_decode_unscales_it(tmp_path):
    latent = load_vae(write_vae(tmp_path / "vae", scaling_factor=0.5, shift_factor=0.25))
    images = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    z = latent.encode(images)
    with torch.no_grad():
        mean = latent.vae.encode(images).latent_dist.mean
        decoded = latent.vae.decode(mean).sample
    assert z.shape == (2, 4, SIZE // 2, SIZE // 2)
    torch.testing.assert_close(z, (mean - 0.25) * 0.5)
    torch.testing.assert_close(latent.decode(z), decoded)
    assert torch.equal(latent.encode(images), z)  # a function of the images alone: no sample is drawn


@pytest.mark.parametrize("modality", [None, "sketch"])
def test_a_resumed_latent_run_repeats_the_uninterrupted_one(tmp_path, vae, modality, plugins):
    extra = [f"modality={modality}"] if modality else []
    whole = tmp_path / "whole"
    train(config(whole, vae, "steps=4", *extra), progress=False)
    split = tmp_path / "split"
    train(config(split, vae, "steps=2", *extra), progress=False)
    train(config(split, vae, "steps=4", *extra), resume=True, progress=False)
    a, b = ema_weights(whole, 4), ema_weights(split, 4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert losses(whole) == losses(split)
    exported = load_model(export_checkpoint(whole, tmp_path / "at-2", step=2), plugins)
    assert exported.vae_folder == tmp_path / "at-2" / "vae" and exported.signature().space == f"latent:{vae_id(vae)}"
    assert all(torch.equal(exported.denoiser.state_dict()[k], v) for k, v in ema_weights(whole, 2).items())


def test_a_run_whose_vae_changed_since_is_neither_resumed_nor_exported(tmp_path):
    from mcdm.errors import ConfigError

    vae = write_vae(tmp_path / "vae")
    run = tmp_path / "run"
    train(config(run, vae, "steps=2"), progress=False)
    write_vae(vae, seed=1)  # the same folder, trained further: other weights, another latent space
    with pytest.raises(ConfigError, match=rf"was trained in latent:{vae_id_before(run)}, and the run's vae now "
                                          rf"gives latent:{vae_id(vae)}"):
        train(config(run, vae, "steps=4"), resume=True, progress=False)
    with pytest.raises(ConfigError, match="the vae folder changed since"):
        export_checkpoint(run, tmp_path / "exported")


def vae_id_before(run: Path) -> str:
    """The identity of the VAE the run was trained on, from the copy its model folder keeps."""
    return vae_id(run / "model" / "vae")


def test_a_latent_run_trains_under_bf16_on_a_gpu(tmp_path, vae, plugins):
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    run = tmp_path / "run"
    train(config(run, vae, "steps=2", "modality=sketch", "mixed_precision=bf16", "sample_every=2"), progress=False)
    train(config(run, vae, "steps=4", "modality=sketch", "mixed_precision=bf16"), resume=True, progress=False)
    assert all(torch.isfinite(w).all() for w in ema_weights(run, 4).values())
    assert load_model(run / "model", plugins).signature().space == f"latent:{vae_id(vae)}"


def unet_folder(folder: Path) -> Path:
    from diffusers import UNet2DModel

    UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8,), layers_per_block=1,
                down_block_types=("DownBlock2D",), up_block_types=("UpBlock2D",), norm_num_groups=8
                ).save_pretrained(folder)
    return folder


@pytest.mark.parametrize(
    "vae_of, override, message",
    [
        (lambda tmp, vae: tmp / "nowhere", "", "vae='{}' is not a folder"),
        (lambda tmp, vae: unet_folder(tmp / "unet"), "", "holds a UNet2DModel, not an AutoencoderKL VAE"),
        (lambda tmp, vae: vae, "data.size=33", "data.size=33 is not a multiple of 2, the scale of the VAE"),
    ],
    ids=["missing folder", "not an AutoencoderKL", "size not divisible"],
)
def test_a_bad_vae_is_one_line_before_any_work(tmp_path, vae, vae_of, override, message):
    folder = vae_of(tmp_path, vae)
    run = tmp_path / "run"
    (tmp_path / "tiny.yaml").write_text("steps: 2\n")
    args = ["train", "denoiser", str(tmp_path / "tiny.yaml"), f"out={run}", *TINY, f"vae={folder}"]
    result = CliRunner().invoke(cli, args + ([override] if override else []))
    assert result.exit_code == 2, result.output  # what was asked for is at fault
    assert message.format(folder) in result.output and result.output.strip().count("\n") == 0, result.output
    assert not run.exists()
