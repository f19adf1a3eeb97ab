"""Each reader against a fixture tree written here, file by file, in the real dataset's exact layout."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcdm.data import DataError
from mcdm.data.adapters import CelebAMaskHQ, FolderFaces, MMCelebAHQ, read_filenames_pickle
from mcdm.data.labels import BISENET_LABELS, LABELS


def save_image(array: np.ndarray, path: Path) -> Path:
    """Write an image file (format from the suffix), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def image(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def part(box: tuple[int, int, int, int], size: int = 16) -> np.ndarray:
    """A 0/255 part mask with the rectangle rows r0:r1, cols c0:c1 set."""
    mask = np.zeros((size, size), np.uint8)
    r0, r1, c0, c1 = box
    mask[r0:r1, c0:c1] = 255
    return mask


# ---------------------------------------------------------------- CelebAMask-HQ


@pytest.fixture
def celebamask(tmp_path: Path) -> Path:
    """Ids 0 and 2001 (second mask folder); images 32 px, masks 16 px as in the real 1024/512 pair."""
    root = tmp_path / "CelebAMask-HQ"
    for image_id in (0, 2001):
        save_image(image(image_id), root / "CelebA-HQ-img" / f"{image_id}.jpg")
        folder = root / "CelebAMask-HQ-mask-anno" / str(image_id // 2000)
        save_image(part((2, 14, 2, 14)), folder / f"{image_id:05d}_skin.png")
        save_image(part((6, 10, 6, 10)), folder / f"{image_id:05d}_nose.png")  # later part: overwrites skin
        save_image(part((0, 4, 0, 16)), folder / f"{image_id:05d}_hair.png")
        save_image(part((0, 2, 0, 16)), folder / f"{image_id:05d}_hat.png")  # hat after hair: wins
    return root


def expected_celebamask() -> np.ndarray:
    small = np.zeros((16, 16), np.uint8)
    small[2:14, 2:14] = LABELS.index("skin")
    small[6:10, 6:10] = LABELS.index("nose")
    small[0:4, :] = LABELS.index("hair")
    small[0:2, :] = LABELS.index("hat")
    return small.repeat(2, axis=0).repeat(2, axis=1)  # nearest-neighbour upscale to the image


def test_celebamask_hq_combines_parts_in_official_order(celebamask):
    reader = CelebAMaskHQ(celebamask)
    assert reader.names == ["0", "2001"]
    sample = reader[1]
    assert sample.image.shape == (32, 32, 3) and sample.sketch is None and sample.captions == []
    assert np.array_equal(sample.mask, expected_celebamask())
    assert sample.name == "2001"


def test_celebamask_hq_bisenet_order(celebamask):
    mask = CelebAMaskHQ(celebamask, label_order=BISENET_LABELS)[0].mask
    assert set(np.unique(mask)) == {0, 1, 10, 17, 18}  # background, skin, nose, hair, hat in BiSeNet ids
    assert (mask == BISENET_LABELS.index("hat")).sum() == (expected_celebamask() == LABELS.index("hat")).sum()


def test_celebamask_hq_label_order_must_be_a_permutation(celebamask):
    with pytest.raises(ValueError, match="label_order"):
        CelebAMaskHQ(celebamask, label_order=LABELS[:-1])


def test_celebamask_hq_missing_image_names_the_file(celebamask):
    with pytest.raises(DataError, match=r"CelebA-HQ-img/7\{"):
        CelebAMaskHQ(celebamask, ids=[7])[0]


def test_celebamask_hq_missing_masks_name_the_file(celebamask):
    for path in (celebamask / "CelebAMask-HQ-mask-anno" / "0").glob("00000_*.png"):
        path.unlink()
    with pytest.raises(DataError, match="00000_skin.png"):
        CelebAMaskHQ(celebamask)[0]


def test_celebamask_hq_corrupt_image_names_the_file(celebamask):
    (celebamask / "CelebA-HQ-img" / "0.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    with pytest.raises(DataError, match=r"cannot read image .*0\.jpg"):
        CelebAMaskHQ(celebamask)[0]


def test_skip_mode_leaves_bad_samples_out_and_counts_them(celebamask):
    (celebamask / "CelebA-HQ-img" / "0.jpg").write_bytes(b"")
    reader = CelebAMaskHQ(celebamask, on_error="skip")
    assert [s.name for s in reader] == ["2001"]
    assert len(reader.skipped) == 1 and "0.jpg" in str(reader.skipped[0])
    with pytest.raises(DataError):
        list(CelebAMaskHQ(celebamask))  # the default raises
    with pytest.raises(DataError):
        reader[0]  # indexing asks for one sample: nothing to skip to


# ---------------------------------------------------------------- Multi-Modal-CelebA-HQ


@pytest.fixture
def mm(tmp_path: Path) -> Path:
    root = tmp_path / "Multi-Modal-CelebA-HQ"
    for name in ("0", "1", "2"):
        save_image(image(int(name)), root / "image" / f"{name}.jpg")
        sketch = np.full((32, 32), 255, np.uint8)
        sketch[10, :] = 0  # one dark stroke on white, as the dataset's sketches
        save_image(sketch, root / "sketch" / f"{name}.png")
        captions = [f"This woman has black hair, caption {k} of image {name}." for k in range(10)]
        write_text(root / "text" / "celeba-caption" / f"{name}.txt", "\n".join(captions) + "\n")
    (root / "train").mkdir()
    (root / "test").mkdir()
    (root / "train" / "filenames.pickle").write_bytes(pickle.dumps(["0", "1"], protocol=2))
    # test split as Python 2 wrote it (the dataset's era): pickle.dumps(['2'], 2) under Python 2
    (root / "test" / "filenames.pickle").write_bytes(b"\x80\x02]q\x00U\x012q\x01a.")
    return root


def test_mm_celeba_hq_reads_splits_sketches_and_captions(mm):
    train, test = MMCelebAHQ(mm, "train"), MMCelebAHQ(mm, "test")
    assert train.names == ["0", "1"] and test.names == ["2"]
    sample = train[1]
    assert sample.mask is None and len(sample.captions) == 10
    assert sample.captions[3] == "This woman has black hair, caption 3 of image 1."
    expected = np.zeros((32, 32), np.uint8)
    expected[10, :] = 255  # returned as white strokes on black
    assert np.array_equal(sample.sketch, expected)
    assert np.array_equal(test[0].image, np.asarray(Image.open(mm / "image" / "2.jpg").convert("RGB")))


def test_mm_celeba_hq_empty_caption_file_names_the_file(mm):
    write_text(mm / "text" / "celeba-caption" / "1.txt", "\n  \n")
    with pytest.raises(DataError, match=r"caption file .*1\.txt is empty"):
        MMCelebAHQ(mm)[1]


def test_mm_celeba_hq_missing_caption_names_the_file(mm):
    (mm / "text" / "celeba-caption" / "0.txt").unlink()
    with pytest.raises(DataError, match=r"missing file .*0\.txt"):
        MMCelebAHQ(mm)[0]


class _Exploit:
    """Unpickling this calls os.system: what a malicious filenames.pickle would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_not_executed(mm, tmp_path):
    marker = tmp_path / "pwned"
    path = mm / "train" / "filenames.pickle"
    path.write_bytes(pickle.dumps(["0", _Exploit(marker)]))
    with pytest.raises(DataError, match="filenames.pickle"):
        MMCelebAHQ(mm)
    assert not marker.exists()


def test_pickle_of_bytes_names_is_read_as_str(tmp_path):
    path = tmp_path / "filenames.pickle"
    path.write_bytes(pickle.dumps([b"12", "13"], protocol=4))
    assert read_filenames_pickle(path) == ["12", "13"]


@pytest.mark.parametrize("content", [{"names": ["0"]}, [0, 1], "0", ["../../etc/passwd"]])
def test_pickle_must_be_a_list_of_plain_names(tmp_path, content):
    path = tmp_path / "filenames.pickle"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(DataError, match="filenames.pickle"):
        read_filenames_pickle(path)


def test_truncated_pickle_is_a_data_error(tmp_path):
    path = tmp_path / "filenames.pickle"
    path.write_bytes(pickle.dumps(["0", "1"])[:-3])
    with pytest.raises(DataError, match="filenames.pickle"):
        read_filenames_pickle(path)


# ---------------------------------------------------------------- plain folders


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "my-faces"
    for stem in ("a", "b", "10", "2"):
        save_image(image(len(stem)), root / "images" / f"{stem}.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = LABELS.index("skin")
    save_image(mask, root / "masks" / "a.png")
    sketch = np.zeros((32, 32), np.uint8)
    sketch[5, 5:20] = 255
    save_image(sketch, root / "sketches" / "a.png")
    write_text(root / "captions" / "a.txt", "A face.\nAnother caption.\n")
    return root


def test_folder_reads_what_each_stem_has(folder):
    reader = FolderFaces(folder)
    assert reader.names == ["2", "10", "a", "b"]
    a, b = reader[2], reader[3]
    assert a.mask is not None and (a.mask == 1).sum() == 256
    assert a.sketch is not None and a.sketch[5, 5] == 255 and a.captions == ["A face.", "Another caption."]
    assert b.mask is None and b.sketch is None and b.captions == []


def test_folder_required_modality_missing_names_the_file(folder):
    with pytest.raises(DataError, match=r"missing file .*masks/b\{"):
        FolderFaces(folder, require=["mask"])[3]


def test_folder_mask_with_unknown_label_id_names_the_file(folder):
    mask = np.zeros((32, 32), np.uint8)
    mask[0, 0] = 23
    save_image(mask, folder / "masks" / "b.png")
    with pytest.raises(DataError, match=r"masks/b\.png has label ids \[23\]"):
        FolderFaces(folder)[3]


def test_folder_colour_mask_is_refused(folder):
    save_image(np.zeros((32, 32, 3), np.uint8), folder / "masks" / "b.png")
    with pytest.raises(DataError, match="single-channel"):
        FolderFaces(folder)[3]


def test_folder_truncated_png_names_the_file(folder):
    path = folder / "images" / "b.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataError, match=r"cannot read image .*b\.png"):
        FolderFaces(folder)[3]


def test_folder_mask_of_other_aspect_is_refused(folder):
    save_image(np.zeros((16, 32), np.uint8), folder / "masks" / "b.png")
    with pytest.raises(DataError, match="aspect"):
        FolderFaces(folder)[3]


def test_folder_skip_mode_counts(folder):
    write_text(folder / "captions" / "b.txt", "")
    save_image(np.full((32, 32), 99, np.uint8), folder / "masks" / "2.png")
    reader = FolderFaces(folder, on_error="skip")
    assert [s.name for s in reader] == ["10", "a"]
    assert len(reader.skipped) == 2


def test_folder_without_images_directory(tmp_path):
    with pytest.raises(DataError, match="missing directory"):
        FolderFaces(tmp_path)
