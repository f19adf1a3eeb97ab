"""Augmentation, and the judge training run end to end on a few faces and steps."""

import json

import torch

from mcdm.data.labels import LABELS
from mcdm.eval.augment import Augmentation, degrade, mirror, mirrored_labels
from mcdm.eval.judges import Judges
from mcdm.eval.train_judges import main


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


def test_train_judges_end_to_end(tmp_path, capsys):
    out = tmp_path / "judges"
    args = ["--out", str(out), "--steps", "2", "--cache-dir", str(tmp_path / "cache"), "n_train=12", "n_test=6",
            "batch_size=4", "warmup_steps=1", "parsing_channels=[4,4,8,8]", "attribute_channels=[4,4,8,8]"]  # fmt: skip
    assert main(args) == 0
    report = json.loads((out / "judges.json").read_text())
    assert report["parsing"]["n_images"] == 6 and 0 <= report["parsing"]["mean_iou"] <= 1
    assert set(report["attributes"]) == {"gender", "hair_color", "eyeglasses", "smiling", "hat", "beard"}
    assert report["training"]["parsing"]["steps"] == 2 and report["training"]["batch_size"] == 4
    assert report["data"]["test"]["split"] == "test" and report["data"]["train"]["n"] == 12
    assert "degraded" in report and "machine" in report
    judges = Judges.load(out)
    assert judges.parsing.config["training"]["steps"] == 2
    assert "parsing mean IoU" in capsys.readouterr().out
