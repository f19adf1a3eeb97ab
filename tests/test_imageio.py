"""Picture sheets: faces laid out in labelled rows; PNG files written atomically."""

import os
import stat

import numpy as np
import pytest
from PIL import Image

from mcdm.imageio import labelled_rows, save_png_atomic


def test_labelled_rows_lays_each_row_of_faces_out_enlarged_beside_its_label():
    red = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    red[..., 0] = 255
    blue = np.zeros_like(red)
    blue[..., 2] = 255
    sheet = np.asarray(labelled_rows({"first": red, "second row": blue}, scale=3))
    assert sheet.shape[0] == 2 * (24 + 2) + 2
    label_width = sheet.shape[1] - (4 * (24 + 2) + 2)
    assert label_width > 0
    tile = sheet[2:26, label_width + 2 : label_width + 26]  # first row, first face, 3x enlarged
    assert (tile == [255, 0, 0]).all()
    tile = sheet[28:52, label_width + 2 + 3 * 26 : label_width + 26 + 3 * 26]  # second row, last face
    assert (tile == [0, 0, 255]).all()
    assert (sheet[:, : label_width // 2] != 255).any()  # the labels are drawn


def test_labelled_rows_refuses_rows_of_different_lengths():
    faces = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="as many images"):
        labelled_rows({"two": faces, "one": faces[:1]})


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_saved_png_is_readable_as_the_umask_allows(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save_png_atomic(Image.new("RGB", (4, 4), "red"), tmp_path / "sub" / "red.png")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert Image.open(path).getpixel((0, 0)) == (255, 0, 0)
    assert [p.name for p in path.parent.iterdir()] == ["red.png"]


def test_a_failed_save_leaves_neither_the_file_nor_a_temporary(tmp_path):
    with pytest.raises(OSError):
        save_png_atomic(Image.new("RGBA", (4, 4)).convert("CMYK"), tmp_path / "cmyk.png")  # PNG has no CMYK
    assert not list(tmp_path.iterdir())
