"""The training kit (mcdm.training) and the one folder reader: what every trainer's resume relies on."""

import json
import math

import pytest
import torch
from safetensors.torch import save_file

from mcdm.checkpoint import write_checksums
from mcdm.errors import CheckpointError, ConfigError
from mcdm.readers import read_weights_folder
from mcdm.training.checkpoints import (
    Checkpoint,
    check_same_settings,
    read_checkpoint,
    refuse_existing,
    resume,
    save_checkpoint,
)
from mcdm.training.log import LOG_HEADER, TrainingLog
from mcdm.training.schedule import learning_rate


def test_warm_up_is_linear_in_the_order_the_shipped_clip_was_trained_with():
    # lr * (step + 1) / warmup, not lr * ((step + 1) / warmup): the two differ in the last bit for 63 of the
    # shipped CLIP's 200 warm-up steps, which would change its weights
    assert all(learning_rate(s, peak=5e-4, steps=3000, warmup=200) == 5e-4 * (s + 1) / 200 for s in range(200))
    assert [learning_rate(s, peak=1.0, steps=10, warmup=4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]


def test_cosine_decays_to_the_floor_and_constant_stays():
    assert learning_rate(2, peak=2.0, steps=12, warmup=2) == 2.0
    assert learning_rate(12, peak=2.0, steps=12, warmup=2) == 0.0
    assert learning_rate(7, peak=2.0, steps=12, warmup=2) == pytest.approx(1.0)  # half way: half the peak
    assert learning_rate(12, peak=2.0, steps=12, warmup=2, floor=0.1) == pytest.approx(0.2)
    assert learning_rate(50, peak=2.0, steps=12, warmup=2, floor=0.1) == pytest.approx(0.2)  # past the end: held
    assert {learning_rate(s, peak=2.0, steps=12, warmup=2, decay="constant") for s in range(2, 20)} == {2.0}
    assert math.isclose(learning_rate(0, peak=1.0, steps=5, warmup=0), 1.0)


def _trained(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def _save(folder, step, model, optimizer, keep=3, **extra):
    return save_checkpoint(folder, Checkpoint(step=step, modules={"model": model.state_dict()},
                                              optimizer=optimizer.state_dict(), extra=extra), keep=keep)


def test_a_checkpoint_round_trips_weights_optimizer_and_extra_state(tmp_path):
    model, optimizer = _trained()
    folder = _save(tmp_path, 7, model, optimizer, settings={"lr": 0.01})
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "model.safetensors", "optimizer.safetensors",
                                                        "state.json"]
    checkpoint = read_checkpoint(folder, ("model",))
    assert checkpoint.step == 7 and checkpoint.extra == {"settings": {"lr": 0.01}}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in checkpoint.modules["model"].items())
    fresh, fresh_optimizer = _trained(seed=1)
    fresh.load_state_dict(checkpoint.modules["model"])
    fresh_optimizer.load_state_dict(checkpoint.optimizer)
    saved, loaded = optimizer.state_dict()["state"], fresh_optimizer.state_dict()["state"]
    assert all(torch.equal(saved[i][k], loaded[i][k]) for i in saved for k in saved[i])


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    model, optimizer = _trained()
    for step in (2, 4, 6, 8):
        _save(tmp_path, step, model, optimizer, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000006", "step-0000008"]


def test_resume_falls_back_past_a_torn_or_non_finite_checkpoint(tmp_path, capsys):
    model, optimizer = _trained()
    for step in (2, 4, 6):
        _save(tmp_path, step, model, optimizer)
    torn = tmp_path / "step-0000006" / "model.safetensors"
    torn.write_bytes(torn.read_bytes()[:-4])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["weight"][0, 0] = float("nan")
    save_file(state, tmp_path / "step-0000004" / "model.safetensors")
    write_checksums(tmp_path / "step-0000004")  # the bytes verify, the values do not
    restored = []
    assert resume(tmp_path, ("model",), restored.append).step == 2 and len(restored) == 1
    out = capsys.readouterr().out
    assert "skipping unreadable checkpoint" in out and "SHA-256" in out and "NaN or infinite" in out
    assert "resumed from" in out and "step-0000002 (step 2)" in out


def test_a_settings_mismatch_stops_resume_instead_of_falling_back(tmp_path):
    model, optimizer = _trained()
    for step in (2, 4):
        _save(tmp_path, step, model, optimizer, settings={"batch_size": 8})

    def restore(checkpoint):
        check_same_settings(checkpoint.extra["settings"], {"batch_size": 4}, tmp_path)

    with pytest.raises(ConfigError, match="trained with batch_size=8, this run asks for batch_size=4"):
        resume(tmp_path, ("model",), restore, announce=False)


def test_nothing_to_resume_and_a_run_folder_with_checkpoints_are_errors(tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        resume(tmp_path / "checkpoints", ("model",), lambda c: None)
    refuse_existing(tmp_path / "checkpoints")  # none yet: fine
    model, optimizer = _trained()
    _save(tmp_path / "checkpoints", 2, model, optimizer)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        refuse_existing(tmp_path / "checkpoints")


def test_the_log_drops_rows_past_the_checkpoint_and_torn_rows(tmp_path):
    log = TrainingLog(tmp_path / "log.csv")
    for step in (1, 2, 3, 4):
        log.write(step, 0.5, 1e-3, 0.1)
    with open(tmp_path / "log.csv", "a") as f:
        f.write("5,0.4\n\n")
    log.truncate_after(2)
    assert (tmp_path / "log.csv").read_text().splitlines() == [",".join(LOG_HEADER), "1,0.500000,1.000e-03,0.1",
                                                               "2,0.500000,1.000e-03,0.1"]
    TrainingLog(tmp_path / "other.csv", enabled=False).write(1, 0.5, 1e-3, 0.1)
    assert not (tmp_path / "other.csv").exists()


def test_the_folder_reader_names_what_is_wrong(tmp_path):
    with pytest.raises(CheckpointError, match="thing folder .* does not exist"):
        read_weights_folder(tmp_path / "nowhere", "config.json", ("w.safetensors",), what="thing")
    folder = tmp_path / "thing"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"width": 2}))
    with pytest.raises(CheckpointError, match="not a thing folder: w.safetensors is missing"):
        read_weights_folder(folder, "config.json", ("w.safetensors",), what="thing")
    (folder / "w.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="w.safetensors' is not a readable safetensors file"):
        read_weights_folder(folder, "config.json", ("w.safetensors",), what="thing")
    save_file({"a": torch.ones(2)}, folder / "w.safetensors")
    config, weights = read_weights_folder(folder, "config.json", ("w.safetensors",), what="thing")
    assert config == {"width": 2} and torch.equal(weights["w.safetensors"]["a"], torch.ones(2))
    write_checksums(folder)
    save_file({"a": torch.zeros(2)}, folder / "w.safetensors")
    with pytest.raises(CheckpointError, match="does not match its SHA-256"):
        read_weights_folder(folder, "config.json", ("w.safetensors",), what="thing")
