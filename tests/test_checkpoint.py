"""Model folders: round trip, atomic writes, checksums."""

import pytest
import torch

from conftest import SIZE
from mcdm.atomic import atomic_file, atomic_folder, write_text_atomic
from mcdm.checkpoint import CheckpointError, load_model, verify_checksums, write_checksums


def test_round_trip_gives_the_same_outputs(make_model, plugins):
    folder = make_model("toy_a", seed=4)
    a, b = load_model(folder, plugins), load_model(folder, plugins)
    x, t, cond = torch.randn(1, 3, SIZE, SIZE), torch.tensor(10), torch.randn(1, 1, SIZE, SIZE)
    assert torch.equal(a.denoiser(x, t, cond), b.denoiser(x, t, cond))
    assert a.modality == "toy_a" and a.signature().sample_size == SIZE


def test_atomic_folder_leaves_the_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "half.txt").write_text("new")
            raise RuntimeError("crash while writing")
    assert (target / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_file_keeps_the_old_file_until_the_new_one_is_whole(tmp_path):
    target = tmp_path / "manifest.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    assert write_text_atomic(target, "new") == target and target.read_text() == "new"


def test_checksums_catch_a_missing_or_changed_file(make_model):
    folder = make_model("toy_a")
    write_checksums(folder)
    verify_checksums(folder)
    (folder / "mcdm.json").write_text("{}")
    with pytest.raises(CheckpointError, match="mcdm.json.*does not match"):
        verify_checksums(folder)
    (folder / "mcdm.json").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        verify_checksums(folder)
