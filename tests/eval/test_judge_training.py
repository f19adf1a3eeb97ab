"""Augmentation, and the judge training run end to end on a few faces and steps."""

import json

import pytest
import torch
from click.testing import CliRunner

from mcdm.data.labels import LABELS
from mcdm.eval.augment import Augmentation, degrade, mirror, mirrored_labels
from mcdm.eval.judges import Judges
from mcdm.cli import cli


def test_mirrored_labels_swap_sides_and_are_an_involution():
    table = mirrored_labels()
    assert LABELS[int(table[LABELS.index("l_eye")])] == "r_eye"
    assert LABELS[int(table[LABELS.index("r_brow")])] == "l_brow"
    assert int(table[LABELS.index("nose")]) == LABELS.index("nose")
    assert torch.equal(table[table], torch.arange(len(LABELS)))


def test_mirror_flips_images_and_masks_together():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 8, 8) * 2 - 1
    masks = torch.full((4, 8, 8), LABELS.index("skin"))
    masks[:, :, :2] = LABELS.index("l_eye")
    flipped, flipped_masks = mirror(images, masks, 1.0, g)
    assert torch.equal(flipped, images.flip(-1))
    assert (flipped_masks[:, :, -2:] == LABELS.index("r_eye")).all()
    same, same_masks = mirror(images, masks, 0.0, g)
    assert torch.equal(same, images) and torch.equal(same_masks, masks)


def test_degrade_is_seeded_bounded_and_small():
    images = torch.rand(8, 3, 16, 16) * 2 - 1
    a = degrade(images, Augmentation(), torch.Generator().manual_seed(1))
    b = degrade(images, Augmentation(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == images.shape
    assert a.min() >= -1 and a.max() <= 1
    assert (a - images).abs().mean() < 0.2
    off = Augmentation(brightness=0, contrast=0, saturation=0, channel_gain=0, blur=0, noise=0)
    torch.testing.assert_close(degrade(images, off, torch.Generator()), images)


TINY = ["parsing_steps=2", "attribute_steps=2", "n_train=12", "n_test=6", "batch_size=4", "warmup_steps=1",
        "parsing_channels=[4,4,8,8]", "attribute_channels=[4,4,8,8]"]


@pytest.fixture
def tiny_yaml(tmp_path):
    path = tmp_path / "judges.yaml"
    path.write_text(f"cache_dir: {tmp_path / 'cache'}\n")
    return path


def test_train_judges_end_to_end(tmp_path, tiny_yaml):
    out = tmp_path / "judges"
    result = CliRunner().invoke(cli, ["train", "judges", str(tiny_yaml), f"out={out}", *TINY])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "judges.json").read_text())
    assert report["parsing"]["n_images"] == 6 and 0 <= report["parsing"]["mean_iou"] <= 1
    assert set(report["attributes"]) == {"gender", "hair_color", "eyeglasses", "smiling", "hat", "beard"}
    assert report["training"]["parsing"]["steps"] == 2 and report["training"]["batch_size"] == 4
    assert report["data"]["test"]["split"] == "test" and report["data"]["train"]["n"] == 12
    assert "degraded" in report and "machine" in report
    assert "out" not in report["training"]["config"]  # what decides the run, not where it was written
    judges = Judges.load(out)
    assert judges.parsing.config["training"]["steps"] == 2
    assert "parsing mean IoU" in result.output and f"judges written to {out}" in result.output


def test_judge_training_refuses_resume_in_one_line(tmp_path, tiny_yaml):
    result = CliRunner().invoke(cli, ["train", "judges", str(tiny_yaml), f"out={tmp_path / 'j'}", *TINY, "--resume"])
    assert result.exit_code != 0 and "does not checkpoint" in result.output
    assert not (tmp_path / "j").exists()
