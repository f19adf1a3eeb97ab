import numpy as np
import pytest
import torch
from PIL import Image

from mcdm.data.labels import CELEBAMASK_HQ_PALETTE, UNKNOWN, colorize_mask
from mcdm.errors import ConditionError
from mcdm.testing import SIZE, ModalityConformance
from mcdm_segmentation.modality import CHANNELS, NUM_LABELS, SegmentationModality


def face_mask(size=64, unknown_right=False) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[8:56, 12:52] = 1  # skin
    mask[20:26, 18:26] = 4  # l_eye
    mask[20:26, 38:46] = 5  # r_eye
    mask[40:46, 24:40] = 10  # mouth
    mask[0:10, :] = 13  # hair
    if unknown_right:
        mask[:, size // 2:] = UNKNOWN
    return mask


class TestSegmentationConformance(ModalityConformance):
    modality_name = "segmentation"

    def valid_inputs(self):
        return [face_mask(), face_mask(unknown_right=True)]


def test_one_hot_with_unknown_channel_and_weight_map():
    modality = SegmentationModality()
    cond = modality.prepare(face_mask(unknown_right=True), size=SIZE)
    assert cond.shape == (CHANNELS, SIZE, SIZE)
    torch.testing.assert_close(cond.sum(0), torch.ones(SIZE, SIZE))  # exactly one channel per pixel
    weight = modality.weight_map(cond)
    assert weight[:, : SIZE // 2].eq(1).all() and weight[:, SIZE // 2:].eq(0).all()
    null = modality.null_condition(cond)
    assert null[NUM_LABELS].eq(1).all() and modality.weight_map(null).eq(0).all()


def test_palette_image_and_id_map_agree(tmp_path):
    mask = face_mask()
    Image.fromarray(CELEBAMASK_HQ_PALETTE[mask]).save(tmp_path / "palette.png")
    Image.fromarray(mask).save(tmp_path / "ids.png")
    modality = SegmentationModality()
    assert torch.equal(modality.prepare(tmp_path / "palette.png", size=SIZE), modality.prepare(tmp_path / "ids.png", size=SIZE))


@pytest.mark.parametrize("unknown", [(128, 128, 128), (255, 255, 255)], ids=["grey", "white"])
def test_grey_or_white_in_a_palette_picture_is_unknown(tmp_path, unknown):
    mask = face_mask(unknown_right=True)
    picture = colorize_mask(mask)  # draws unknown grey, as the README's pictures show masks
    picture[mask == UNKNOWN] = unknown
    Image.fromarray(picture).save(tmp_path / "partial.png")
    modality = SegmentationModality()
    assert torch.equal(modality.prepare(tmp_path / "partial.png", size=SIZE), modality.prepare(mask, size=SIZE))


def test_resized_with_nearest_so_no_new_labels_appear():
    cond = SegmentationModality().prepare(face_mask(size=100), size=SIZE)
    present = set(cond.sum((1, 2)).nonzero().flatten().tolist())
    assert present <= {0, 1, 4, 5, 10, 13}


@pytest.mark.parametrize(
    "raw, message",
    [
        (np.full((32, 32), 19, np.uint8), "label id 19 is outside"),
        (np.full((32, 32, 3), 7, np.uint8),
         r"colour \(7, 7, 7\) is not in the CelebAMask-HQ palette .*unknown is \(128, 128, 128\) or \(255, 255, 255\)"),
        (np.zeros((32, 40), np.uint8), "square"),
        (np.full((32, 32), 1.5, np.float32), "whole numbers"),
    ],
)
def test_bad_masks(raw, message):
    with pytest.raises(ConditionError, match=message):
        SegmentationModality().prepare(raw, size=SIZE)


def test_a_fully_unknown_mask_leaves_the_prior_alone_and_a_known_one_speaks(tmp_path):
    """The weight map reaches the combiner: unknown pixels get weight 0, so an all-unknown mask changes nothing."""
    from mcdm.checkpoint import load_model, save_model
    from mcdm.compose import Composer
    from mcdm.plugins import make_plugin_manager

    plugins = make_plugin_manager(strict=True)
    unet = plugins.denoiser_class("unet")
    schedule = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2"}
    small = {"block_out_channels": (8, 16), "layers_per_block": 1, "attention": False}
    torch.manual_seed(0)
    save_model(tmp_path / "prior", unet.build(sample_size=SIZE, **small), modality=None, schedule_config=schedule)
    save_model(tmp_path / "seg", unet.build(sample_size=SIZE, cond_channels=CHANNELS, **small),
               modality="segmentation", schedule_config=schedule)
    composer = Composer(load_model(tmp_path / "prior", plugins), {"segmentation": load_model(tmp_path / "seg", plugins)},
                        plugins=plugins, steps=3)
    run = lambda conds: composer.generate_tensor(conds, num_images=2, seed=0, progress=False)  # noqa: E731
    prior_only = run({})
    assert torch.equal(run({"segmentation": np.full((SIZE, SIZE), UNKNOWN, np.uint8)}), prior_only)
    assert (run({"segmentation": face_mask()}) - prior_only).abs().mean() > 1e-3
