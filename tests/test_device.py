"""Composition on the selected test device (MCDM_TEST_DEVICE, cpu by default): every precision, fused and not,
compiled on a GPU; what scripts/device-check.sh runs on CUDA."""

import numpy as np
import pytest
import torch

from conftest import SIZE, TEST_DEVICE

MAPS = {name: np.random.default_rng(i).random((SIZE, SIZE)) for i, name in enumerate(("toy_a", "toy_b"))}
ON_GPU = TEST_DEVICE != "cpu"
pytestmark = pytest.mark.usefixtures("full_fp32")
# mean absolute difference from fp32 on the CPU: bf16 keeps 8 bits of mantissa, fp16 11
TOLERANCE = {"fp32": 1e-4, "bf16": 0.1, "fp16": 0.05}


def generate(composer, **kwargs):
    return composer.generate_tensor(MAPS, num_images=2, steps=3, seed=7, progress=False,
                                    settings={"toy_b": {"baseline": "own"}}, **kwargs)


@pytest.mark.parametrize("fuse", ["always", "never"])
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_composition_in_each_precision_stays_close_to_fp32_on_the_cpu(toy_composer, precision, fuse):
    if precision == "fp16" and not ON_GPU:
        pytest.skip("fp16 autocast is a GPU precision")
    reference = generate(toy_composer(names=tuple(MAPS), fuse="never"))
    images = generate(toy_composer(names=tuple(MAPS), device=TEST_DEVICE, precision=precision, fuse=fuse))
    assert images.device.type == "cpu" and torch.isfinite(images).all()
    assert (images - reference).abs().mean() < TOLERANCE[precision]


@pytest.mark.skipif(not ON_GPU, reason="torch.compile pays on a GPU; MCDM_TEST_DEVICE=cuda runs it")
@pytest.mark.parametrize("fuse", ["always", "never"])
def test_compiled_composition_gives_the_eager_images(toy_composer, fuse):
    eager = generate(toy_composer(names=tuple(MAPS), device=TEST_DEVICE, fuse=fuse))
    compiled = generate(toy_composer(names=tuple(MAPS), device=TEST_DEVICE, fuse=fuse, compile=True))
    torch.testing.assert_close(compiled, eager, rtol=1e-3, atol=1e-3)


@pytest.mark.skipif(not ON_GPU, reason="MCDM_TEST_DEVICE=cuda runs it")
def test_auto_fuses_on_the_gpu(toy_composer):
    composer = toy_composer(names=tuple(MAPS), device=TEST_DEVICE)
    assert len(composer.fused) == 3
