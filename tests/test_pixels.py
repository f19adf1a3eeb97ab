import numpy as np
import torch

from mcdm.pixels import to_model_range, to_uint8


def test_every_uint8_value_survives_the_round_trip():
    images = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    model = to_model_range(images)
    assert model.shape == (1, 3, 16, 16) and model.dtype == torch.float32
    assert model.min() == -1 and model.max() == 1
    assert np.array_equal(to_uint8(model), images)


def test_a_tensor_of_uint8_converts_like_its_array():
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    assert torch.equal(to_model_range(torch.from_numpy(images)), to_model_range(images))


def test_samples_beyond_the_range_are_clamped_not_wrapped():
    overshoot = torch.tensor([-1.3, -1.0, 0.0, 1.0, 1.4]).view(1, 1, 1, 5)
    assert to_uint8(overshoot).ravel().tolist() == [0, 0, 128, 255, 255]
