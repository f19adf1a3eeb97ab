"""Training: resumable with the same loss curve, falls back past a corrupt checkpoint, two ranks stay in sync."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mcdm.checkpoint import load_model
from mcdm.config import load_config
from mcdm.errors import ConfigError
from mcdm.plugins import make_plugin_manager
from mcdm.train import TrainConfig, train

TINY = [
    "data.size=32", "data.length=64", "batch_size=4", "lr_schedule=constant", "warmup_steps=1",
    "denoiser.block_out_channels=[8,16]", "denoiser.layers_per_block=1", "denoiser.attention=false",
    "checkpoint_every=2", "sample_every=0", "mixed_precision=fp32", "threads=1", "log_every=1",
]


def config(out: Path, *extra: str) -> TrainConfig:
    return load_config(TrainConfig, None, [f"out={out}", *TINY, *extra])


def losses(run: Path) -> list[tuple[str, str]]:
    with open(run / "log.csv") as f:
        return [(r["step"], r["loss"]) for r in csv.DictReader(f)]


def ema_weights(run: Path, step: int) -> dict:
    return load_file(run / "checkpoints" / f"step-{step:07d}" / "ema.safetensors")


@pytest.mark.parametrize("modality", [None, "toy_a"])
def test_resumed_run_repeats_the_uninterrupted_one(tmp_path, modality):
    extra = [f"modality={modality}"] if modality else []
    whole = tmp_path / "whole"
    train(config(whole, "steps=6", *extra), progress=False)
    split = tmp_path / "split"
    train(config(split, "steps=4", *extra), progress=False)
    train(config(split, "steps=6", *extra), resume=True, progress=False)
    a, b = ema_weights(whole, 6), ema_weights(split, 6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert losses(whole) == losses(split)
    model = load_model(whole / "model", make_plugin_manager())
    assert model.modality == modality


def test_corrupt_newest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys):
    run = tmp_path / "run"
    train(config(run, "steps=4", "keep_checkpoints=3"), progress=False)
    (run / "checkpoints" / "step-0000004" / "denoiser.safetensors").write_bytes(b"torn write")
    train(config(run, "steps=6"), resume=True, progress=False)
    assert "skipping unreadable checkpoint" in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text())["steps"] == 6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_gpu_run_trains_resumes_and_exports(tmp_path):
    run = tmp_path / "run"
    train(config(run, "steps=2", "modality=toy_a", "mixed_precision=bf16"), progress=False)
    train(config(run, "steps=4", "modality=toy_a", "mixed_precision=bf16"), resume=True, progress=False)
    assert all(torch.isfinite(w).all() for w in ema_weights(run, 4).values())
    assert load_model(run / "model", make_plugin_manager()).modality == "toy_a"


def test_refuses_to_overwrite_a_run_without_resume(tmp_path):
    run = tmp_path / "run"
    train(config(run, "steps=2"), progress=False)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train(config(run, "steps=2"), progress=False)


def test_bad_training_config(tmp_path):
    with pytest.raises(ConfigError, match="batch_size must be at least 1"):
        train(config(tmp_path / "r", "batch_size=0"), progress=False)


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun not installed")
def test_two_cpu_processes_train_the_same_weights(tmp_path):
    yaml = tmp_path / "tiny.yaml"
    yaml.write_text("steps: 3\n")
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "mcdm.cli", "train", str(yaml),
         f"out={tmp_path / 'run'}", *TINY, "modality=toy_a"],
        check=True, env=env, timeout=300,
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["ranks_in_sync"] is True


@pytest.fixture(scope="module")
def celeba_layout(tmp_path_factory):
    """Synthetic faces written in the CelebAMask-HQ + Multi-Modal-CelebA-HQ layout, at 64 px."""
    from mcdm.data.writer import write_synthfaces

    return write_synthfaces(tmp_path_factory.mktemp("data") / "celeba", n=8, size=64, layout="celeba", workers=1,
                            progress=False)


@pytest.mark.parametrize(("modality", "dataset"), [("segmentation", "celebamask-hq"), ("text", "mm-celeba-hq")])
def test_a_modality_trains_on_a_real_dataset_through_its_reader(tmp_path, celeba_layout, modality, dataset):
    from mcdm.train import open_training_data

    extra = ["denoiser.attention_head_dim=2"] if modality == "text" else []
    cfg = config(tmp_path / "run", "steps=2", f"modality={modality}", f"data.name={dataset}",
                 f"data.root={celeba_layout}", *extra)
    faces = open_training_data(cfg.data)
    assert faces[0].image.shape == (32, 32, 3) and len(faces) in (7, 8)  # MM-CelebA-HQ: its train split
    model = train(cfg, progress=False)
    assert load_model(model, make_plugin_manager()).modality == modality


def test_a_dataset_without_the_modality_s_input_is_refused_before_training(tmp_path, celeba_layout):
    cfg = config(tmp_path / "run", "steps=2", "modality=segmentation", "data.name=mm-celeba-hq",
                 f"data.root={celeba_layout}")
    with pytest.raises(ConfigError, match="segmentation.*cannot train on data.name='mm-celeba-hq'"):
        train(cfg, progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_real_dataset_needs_its_root_and_no_variant(tmp_path, celeba_layout):
    from mcdm.train import open_training_data

    with pytest.raises(ConfigError, match="needs data.root"):
        open_training_data(config(tmp_path, "data.name=folder").data)
    with pytest.raises(ConfigError, match="does not apply"):
        open_training_data(config(tmp_path, "data.name=celebamask-hq", f"data.root={celeba_layout}",
                                  "data.variant=dark-hair").data)
