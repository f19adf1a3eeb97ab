"""Picture sheets: faces laid out in labelled rows."""

import numpy as np
import pytest

from mcdm.imageio import labelled_rows


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
