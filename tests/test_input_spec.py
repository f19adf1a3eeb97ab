"""Modality.input_spec: what a plugin declares for the page is checked when it is declared."""

import pytest

from mcdm.modality import InputKind, InputSpec, Label


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": InputKind.LABEL_MAP}, "needs labels and the id of unknown"),
        ({"kind": InputKind.LABEL_MAP, "labels": (Label(0, "a", (0, 0, 0)),)}, "needs labels and the id of unknown"),
        ({"kind": InputKind.CHOICE}, "needs choices"),
        ({"kind": InputKind.LABEL_MAP, "labels": (Label(0, "a", (0, 0, 0)), Label(0, "b", (9, 9, 9))), "unknown": 255},
         "must be distinct"),
        ({"kind": InputKind.LABEL_MAP, "labels": (Label(7, "a", (0, 0, 0)),), "unknown": 7}, "differ from unknown"),
    ],
)
def test_an_incomplete_input_spec_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InputSpec(**kwargs)


def test_the_built_in_modalities_declare_their_page_inputs(plugins):
    assert plugins.modality("sketch").input_spec == InputSpec(InputKind.IMAGE)
    mask = plugins.modality("segmentation").input_spec
    assert mask.kind is InputKind.LABEL_MAP and len(mask.labels) == 19 and mask.unknown == 255
    assert mask.labels[13] == Label(13, "hair", (0, 0, 204))
    text = plugins.modality("text").input_spec
    assert text.kind is InputKind.TEXT and all(caption.endswith(".") for caption in text.examples)
    assert plugins.modality("thumbnail").input_spec is None  # no declaration: the page offers a file upload
