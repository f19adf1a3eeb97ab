"""mcdm train vae: the folder it writes loads and round-trips, its scaling factor is 1 / std of the latents, a
resumed run repeats the uninterrupted one, bad values are one line before any work; the reconstruction figures."""

import csv
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from mcdm.checkpoint import verify_checksums, write_checksums
from mcdm.cli import cli
from mcdm.config import load_config
from mcdm.data.synthfaces import SynthFaces
from mcdm.errors import ConfigError
from mcdm.eval.judges import AttributeJudge, Judges, ParsingJudge
from mcdm.eval.reconstruction import JUDGED, mean_l1, psnr, reconstruction_figures
from mcdm.latent import load_vae
from mcdm.pixels import to_model_range
from mcdm.train_vae import VaeTrainConfig, train_vae

SCALE_IMAGES = 16
TINY = [
    "data.size=32", "data.length=64", "batch_size=4", "block_out_channels=[8,16]", "norm_num_groups=8",
    "lr_schedule=constant", "warmup_steps=1", "checkpoint_every=2", "log_every=1", "threads=1",
    f"scale_images={SCALE_IMAGES}", "card_faces=8",
]


@pytest.fixture(scope="module")
def judges(tmp_path_factory):
    """Tiny random judges of 32x32 faces, with their checksums."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("judges") / "judges"
    Judges(ParsingJudge.build(channels=[4, 8, 8, 8]), AttributeJudge.build(channels=[4, 8, 8, 8])).save(folder)
    write_checksums(folder)
    return folder


def config(out, judges, *extra) -> VaeTrainConfig:
    return load_config(VaeTrainConfig, None, [f"out={out}", *TINY, f"judges={judges}", *extra])


def losses(run) -> list[tuple[str, str]]:
    with open(run / "log.csv") as f:
        return [(r["step"], r["loss"]) for r in csv.DictReader(f)]


class IdentityVae(torch.nn.Module):
    """Encodes an image as itself and decodes a latent as itself: a perfect reconstruction."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x):
        return type("Encoded", (), {"latent_dist": type("Posterior", (), {"mode": lambda _: x})()})()

    def decode(self, z):
        return type("Decoded", (), {"sample": z})()


def test_the_trained_folder_loads_round_trips_and_is_scaled_to_unit_std(tmp_path, judges):
    model = train_vae(config(tmp_path / "run", judges, "steps=2"), progress=False)
    verify_checksums(model, required=True)
    assert "PSNR" in (model / "MODEL_CARD.md").read_text()
    assert not [p for p in (tmp_path / "run").rglob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl", ".ckpt"}]
    space = load_vae(model)
    faces = SynthFaces(size=32, seed=0, split="train", length=64)
    images = to_model_range(np.stack([faces[i].image for i in range(SCALE_IMAGES)]))
    with torch.no_grad():
        means = space.vae.encode(images).latent_dist.mode()
        expected = space.vae.decode(means).sample
    assert means.shape == (SCALE_IMAGES, 4, 16, 16)
    assert space.vae.config.scaling_factor == pytest.approx(1 / float(means.std()), rel=1e-4)
    assert torch.allclose(space.decode(means * space.vae.config.scaling_factor), expected, atol=1e-5)


def test_a_resumed_run_repeats_the_uninterrupted_one(tmp_path, judges):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_vae(config(whole, judges, "steps=6"), progress=False)
    train_vae(config(split, judges, "steps=4"), progress=False)
    train_vae(config(split, judges, "steps=6"), resume=True, progress=False)
    a, b = (load_file(run / "model" / "diffusion_pytorch_model.safetensors") for run in (whole, split))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert losses(whole) == losses(split) and len(losses(whole)) == 6
    assert load_vae(whole / "model").vae.config.scaling_factor == load_vae(split / "model").vae.config.scaling_factor


def test_a_resumed_run_must_keep_the_settings(tmp_path, judges):
    run = tmp_path / "run"
    train_vae(config(run, judges, "steps=2"), progress=False)
    with pytest.raises(ConfigError, match="trained with kl_weight=1e-06, this run asks for kl_weight=0.01"):
        train_vae(config(run, judges, "steps=4", "kl_weight=0.01"), resume=True, progress=False)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train_vae(config(run, judges, "steps=4"), progress=False)


def test_psnr_and_l1_of_equal_and_of_different_images():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    assert psnr(real, real) == math.inf and mean_l1(real, real) == 0
    off_by_one = np.minimum(real.astype(np.int64) + 1, 255).astype(np.uint8)
    changed = float(np.mean(off_by_one != real))
    assert psnr(real, off_by_one) == pytest.approx(10 * math.log10(255**2 / changed))
    assert mean_l1(real, off_by_one) == pytest.approx(changed / 255)


def test_a_perfect_reconstruction_costs_the_judges_nothing(judges):
    figures = reconstruction_figures(IdentityVae(), Judges.load(judges), n=6, size=64)
    assert figures["psnr"] == math.inf and figures["l1"] == 0
    assert figures["judged_at"] == 32 and figures["faces"] == {"dataset": "synthfaces", "split": "test", "seed": 0,
                                                               "size": 64, "n": 6}
    assert figures["real"] == figures["reconstructed"]
    assert figures["difference"] == dict.fromkeys(JUDGED, 0)


def test_a_trained_vae_s_figures_are_finite_and_below_the_perfect_ones(tmp_path, judges):
    vae = load_vae(train_vae(config(tmp_path / "run", judges, "steps=2"), progress=False)).vae
    figures = reconstruction_figures(vae, Judges.load(judges), n=6, size=32)
    assert set(figures) == {"faces", "judged_at", "psnr", "l1", "real", "reconstructed", "difference"}
    assert 0 < figures["psnr"] < math.inf and 0 < figures["l1"] < 1
    for side in ("real", "reconstructed"):
        assert set(figures[side]) == {*JUDGED, "attributes"}
        assert all(0 <= figures[side][name] <= 1 for name in JUDGED)


@pytest.mark.parametrize(
    "override, message",
    [
        ("norm_num_groups=3", "norm_num_groups=3 must divide every width of block_out_channels=[8, 16]"),
        ("block_out_channels=[]", "block_out_channels must be a list of positive widths"),
        ("kl_weight=-1", "kl_weight must be a finite number of at least 0"),
        ("lr=nan", "lr must be a finite number above 0"),
        ("steps=0", "steps must be at least 1"),
        ("latent_channels=0", "latent_channels must be at least 1"),
        ("scale_images=0", "scale_images must be at least 1"),
        ("seed=-1", "seed must be in [0, 2**32 - 1]"),
        ("data.size=0", "data.size must be in [8, 1024]"),
        ("data.size=48", "data.size=48 faces do not average down to the judges' 32x32"),
        ("mixed_precision=fp16", "at key 'mixed_precision'"),
        ("data.variant=nope", "unknown synthfaces variant 'nope'"),
    ],
)
def test_each_bad_value_is_one_line_before_any_work(tmp_path, judges, override, message):
    (tmp_path / "tiny.yaml").write_text("steps: 2\n")
    result = CliRunner().invoke(cli, ["train", "vae", str(tmp_path / "tiny.yaml"), f"out={tmp_path / 'run'}", *TINY,
                                      f"judges={judges}", override])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.strip().count("\n") == 0, result.output
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_size_the_vae_cannot_give_back_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match=r"gives back \(32, 32\) images from data.size=33: .*multiple of 2"):
        train_vae(config(tmp_path / "run", None, "data.size=33", "judges=null"), progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_shipped_recipe_halves_64x64_faces_into_four_latent_channels():
    from pathlib import Path

    recipe = Path(__file__).resolve().parent.parent / "configs" / "vae" / "vae-64.yaml"
    shipped = load_config(VaeTrainConfig, recipe, ["out=unused"])
    assert shipped.data.size == 64 and len(shipped.block_out_channels) == 2 and shipped.latent_channels == 4
    assert shipped.judges == "judges-32"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_gpu_run_trains_in_bf16_resumes_and_exports(tmp_path, judges):
    run = tmp_path / "run"
    train_vae(config(run, judges, "steps=2", "mixed_precision=bf16"), progress=False)
    model = train_vae(config(run, judges, "steps=4", "mixed_precision=bf16"), resume=True, progress=False)
    weights = load_file(model / "diffusion_pytorch_model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert math.isfinite(load_vae(model).vae.config.scaling_factor)


def test_missing_judges_are_one_line_before_any_work(tmp_path):
    (tmp_path / "tiny.yaml").write_text("steps: 2\n")
    result = CliRunner().invoke(cli, ["train", "vae", str(tmp_path / "tiny.yaml"), f"out={tmp_path / 'run'}", *TINY,
                                      f"judges={tmp_path / 'no-judges'}"])
    assert result.exit_code == 1 and "no model folder" in result.output, result.output
    assert result.output.strip().count("\n") == 0, result.output
    assert not (tmp_path / "run" / "checkpoints").exists()
