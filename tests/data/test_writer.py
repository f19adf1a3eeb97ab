"""write_synthfaces round trips: what the readers get back is what SynthFaces made."""

import json
from pathlib import Path

import numpy as np
import pytest

from mcdm.data import writer
from mcdm.data.adapters import CelebAMaskHQ, FolderFaces, MMCelebAHQ
from mcdm.data.attributes import FaceAttributes
from mcdm.data.synthfaces import SynthFaces
from mcdm.data.writer import write_synthfaces

N, SIZE, SEED = 10, 32, 5


@pytest.fixture(scope="module")
def celeba_tree(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("w") / "synth"
    return write_synthfaces(out, N, SIZE, SEED, test_fraction=0.2, workers=1, progress=False)


def expected(image_id: int):
    split, index = ("train", image_id) if image_id < 8 else ("test", image_id - 8)
    return SynthFaces(SIZE, SEED, split, length=8 if split == "train" else 2)[index]


def test_celebamask_hq_reader_gets_images_and_masks_back(celeba_tree):
    reader = CelebAMaskHQ(celeba_tree)
    assert reader.names == [str(i) for i in range(N)]
    for image_id in (0, 7, 9):
        sample, truth = reader[image_id], expected(image_id)
        assert np.array_equal(sample.image, truth.image)
        assert np.array_equal(sample.mask, truth.mask)


def test_mm_celeba_hq_reader_gets_sketches_captions_and_splits_back(celeba_tree):
    train, test = MMCelebAHQ(celeba_tree, "train"), MMCelebAHQ(celeba_tree, "test")
    assert train.names == [str(i) for i in range(8)] and test.names == ["8", "9"]
    for reader, image_id in ((train, 3), (test, 1)):
        sample, truth = reader[image_id], expected(int(reader.names[image_id]))
        assert np.array_equal(sample.image, truth.image)
        assert np.array_equal(sample.sketch, truth.sketch)
        assert sample.captions == truth.captions and len(sample.captions) == 10


def test_metadata_records_attributes(celeba_tree):
    metadata = json.loads((celeba_tree / "synthfaces.json").read_text())
    assert metadata["size"] == SIZE and metadata["seed"] == SEED and metadata["ids"]["test"] == [8, 9]
    record = metadata["attributes"]["9"]
    assert (record["split"], record["index"]) == ("test", 1)
    assert FaceAttributes.from_dict(record) == expected(9).attributes


def test_folder_layout_round_trip(tmp_path):
    root = write_synthfaces(tmp_path / "f", 4, SIZE, SEED, layout="folder", test_fraction=0.25, workers=1)
    reader = FolderFaces(root / "train", require=["mask", "sketch", "caption"])
    assert reader.names == ["0", "1", "2"] and FolderFaces(root / "test").names == ["3"]
    truth = SynthFaces(SIZE, SEED, "train", length=3)[2]
    sample = reader[2]
    assert np.array_equal(sample.image, truth.image) and np.array_equal(sample.mask, truth.mask)
    assert np.array_equal(sample.sketch, truth.sketch) and sample.captions == truth.captions


def test_jpg_images_are_close_and_masks_exact(tmp_path):
    root = write_synthfaces(tmp_path / "j", 2, 64, SEED, image_format="jpg", test_fraction=0.0, workers=1)
    assert (root / "CelebA-HQ-img" / "0.jpg").is_file()
    truth = SynthFaces(64, SEED, "train", length=2)[1]
    sample = CelebAMaskHQ(root)[1]
    assert np.abs(sample.image.astype(int) - truth.image).mean() < 4
    assert np.array_equal(sample.mask, truth.mask)


def test_parallel_writing_gives_the_same_files(tmp_path, celeba_tree):
    root = write_synthfaces(tmp_path / "p", N, SIZE, SEED, test_fraction=0.2, workers=2, progress=False)
    for path in sorted(celeba_tree.rglob("*.png"))[::7]:
        assert (root / path.relative_to(celeba_tree)).read_bytes() == path.read_bytes()


def test_refuses_a_non_empty_directory_but_fills_an_empty_one(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="full"):
        write_synthfaces(tmp_path / "full", 2, SIZE, progress=False)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert (write_synthfaces(tmp_path / "empty", 1, SIZE, workers=1, progress=False) / "synthfaces.json").is_file()


@pytest.mark.parametrize("kwargs", [{"size": 16}, {"size": 300}, {"n": 0}, {"test_fraction": 1.0}])
def test_bad_arguments(tmp_path, kwargs):
    arguments = {"n": 2, "size": SIZE, **kwargs}
    with pytest.raises(ValueError):
        write_synthfaces(tmp_path / "x", **arguments, progress=False)
    assert not (tmp_path / "x").exists()


def test_an_error_midway_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def failing(*args):
        calls.append(args)
        if len(calls) == 3:
            raise OSError("disk full")

    monkeypatch.setattr(writer, "_write_celeba", failing)
    with pytest.raises(OSError, match="disk full"):
        write_synthfaces(tmp_path / "half", 5, SIZE, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []
