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

from click.testing import CliRunner

from mcdm.checkpoint import load_model
from mcdm.cli import cli
from mcdm.config import load_config
from mcdm.errors import CheckpointError, ConfigError, TrainingError
from mcdm.plugins import make_plugin_manager
from mcdm.train import TrainConfig, export_checkpoint, train

TINY = [
    "data.size=32", "data.length=64", "batch_size=4", "lr_schedule=constant", "warmup_steps=1",
    "denoiser.block_out_channels=[8,16]", "denoiser.layers_per_block=1", "denoiser.attention=false",
    "checkpoint_every=2", "sample_every=0", "mixed_precision=fp32", "threads=1", "log_every=1",
]


def config(out: Path, *extra: str) -> TrainConfig:
    return load_config(TrainConfig, None, [f"out={out}", *TINY, *extra])


def tiny_yaml(folder: Path) -> Path:
    path = folder / "tiny.yaml"
    path.write_text("steps: 2\n")
    return path


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
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "mcdm.cli", "train", "denoiser", str(yaml),
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


def test_a_checkpoint_with_a_flipped_tensor_is_detected_and_the_run_falls_back(tmp_path, capsys):
    run = tmp_path / "run"
    train(config(run, "steps=4", "keep_checkpoints=3"), progress=False)
    weights = run / "checkpoints" / "step-0000004" / "denoiser.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x10  # one bit of one weight: the file still parses, only its checksum knows
    weights.write_bytes(bytes(data))
    train(config(run, "steps=6"), resume=True, progress=False)
    out = capsys.readouterr().out
    assert "skipping unreadable checkpoint" in out and "does not match its SHA-256" in out
    assert "resumed from" in out and "step-0000002" in out


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"not finite at step 2 .*last good checkpoint is .*step-0000001"):
        train(config(run, "steps=6", "lr=1e12", "checkpoint_every=1"), progress=False)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-0000001"]
    assert all(torch.isfinite(w).all() for w in ema_weights(run, 1).values())
    assert not (run / "model").exists()  # no model is exported from a diverged run


def test_a_damaged_log_resumes(tmp_path):
    whole = tmp_path / "whole"
    train(config(whole, "steps=4"), progress=False)
    run = tmp_path / "run"
    train(config(run, "steps=2"), progress=False)
    with open(run / "log.csv", "a") as f:
        f.write("\n3,0.5\ngarbage\n")  # a blank line, a torn row, a line of nothing
    train(config(run, "steps=4"), resume=True, progress=False)
    assert losses(run) == losses(whole)


def test_orphan_partial_folders_are_removed_and_live_ones_kept(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = run / "checkpoints" / f".step-0000002.{dead.pid}-0123abcd.partial"
    orphan.mkdir()
    (orphan / "denoiser.safetensors").write_bytes(b"half")
    live = run / f".model.{os.getpid()}-89abcdef.partial"  # this very process: still writing
    live.mkdir()
    train(config(run, "steps=2"), progress=False)
    assert not orphan.exists() and live.exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.size=33", "cannot run on data.size=33 images"),
        ("data.size=0", "data.size must be in [8, 1024]"),
        ("data.length=0", "data.length must be at least 1"),
        ("denoiser.block_out_channels=[]", "does not build a prior denoiser"),
        ("denoiser.layers_per_block=0", "cannot run on data.size=32"),
        ("threads=-1", "threads must be at least 0"),
        ("seed=-1", "seed must be in [0, 2**32 - 1]"),
        ("seed=4294967296", "seed must be in [0, 2**32 - 1]"),
        ("data.seed=-1", "data.seed must be in"),
        ("schedule.num_train_timesteps=0", "key 'num_train_timesteps' must be an integer"),
        ("schedule.beta_schedule=bogus", "key 'beta_schedule' ('bogus')"),
        ("lr=nan", "lr must be a finite number above 0"),
        ("lr=-1", "lr must be a finite number above 0"),
        ("weight_decay=-1", "weight_decay must be a finite number"),
        ("warmup_steps=-5", "warmup_steps must be at least 0"),
        ("sample_every=-1", "sample_every must be at least 0"),
        ("batch_size=0", "batch_size must be at least 1"),
        ("ema_decay=1", "ema_decay must be in [0, 1)"),
        ("condition_dropout=1.5", "condition_dropout must be in [0, 1)"),
        ("data.variant=nope", "unknown synthfaces variant 'nope'"),
        ("modality=nope", "unknown modality 'nope'"),
        ("steps=many", "at key 'steps'"),
        ("bogus=1", "at key 'bogus'"),
    ],
)
def test_each_bad_training_value_is_one_line_before_any_work(tmp_path, override, message):
    result = CliRunner().invoke(cli, ["train", "denoiser", str(tiny_yaml(tmp_path)), f"out={tmp_path / 'run'}", *TINY, override])
    assert result.exit_code == 2, result.output  # what was asked for is at fault
    assert message in result.output and result.output.strip().count("\n") == 0, result.output
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_unwritable_run_folder_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(cli, ["train", "denoiser", str(tiny_yaml(tmp_path)), f"out={tmp_path / 'file' / 'run'}", *TINY])
    assert result.exit_code == 2 and "cannot be written: Not a directory" in result.output


KILLED_AT_CHECKPOINT = """
import os, signal, sys
import mcdm.checkpoint as checkpoint
import mcdm.train as training
from mcdm.config import load_config

write_checksums = checkpoint.write_checksums

def die_while_writing(folder):  # called inside the temporary folder, after the tensors, before the rename
    if folder.name.startswith(".step-" + os.environ["KILL_AT"].zfill(7)):
        os.kill(os.getpid(), signal.SIGKILL)
    return write_checksums(folder)

checkpoint.write_checksums = die_while_writing  # what the kit calls on each checkpoint
training.train(load_config(training.TrainConfig, None, sys.argv[1:]), progress=False)
"""


def test_kill_9_during_a_checkpoint_write_resumes_bit_identically(tmp_path):
    whole = tmp_path / "whole"
    train(config(whole, "steps=6"), progress=False)
    run = tmp_path / "run"
    env = {**os.environ, "KILL_AT": "4", "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-c", KILLED_AT_CHECKPOINT, f"out={run}", *TINY, "steps=6"], env=env,
                            capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.endswith(".partial")]  # the torn write
    train(config(run, "steps=6"), resume=True, progress=False)
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    a, b = ema_weights(whole, 6), ema_weights(run, 6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert losses(whole) == losses(run)


def test_export_checkpoint_writes_a_checkpoints_ema_as_a_model_folder(tmp_path):
    run = tmp_path / "run"
    train(config(run, "steps=4", "keep_checkpoints=2"), progress=False)
    folder = export_checkpoint(run, tmp_path / "at-2", step=2)
    loaded = load_model(folder, make_plugin_manager()).denoiser.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in ema_weights(run, 2).items())
    with pytest.raises(CheckpointError, match="no checkpoint at step 3"):
        export_checkpoint(run, tmp_path / "at-3", step=3)
