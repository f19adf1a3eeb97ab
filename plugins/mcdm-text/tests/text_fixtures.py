"""Fixtures for the text plugin's tests: tiny text towers, denoisers and CLIPs, created on the fly (no downloads).

Test modules import the fixtures they use from here. (Not a conftest.py: the engine's tests import names from
``conftest``, and a second rootless conftest.py in the same session would shadow theirs.)
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

TINY_TEXT_CFG = {"context_length": 64, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}
TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
    "text_cfg": TINY_TEXT_CFG,
}


@pytest.fixture(scope="session")
def plugins():
    from mcdm.plugins import make_plugin_manager

    return make_plugin_manager(strict=True)


@pytest.fixture(scope="session")
def text():
    from mcdm_text.modality import TextModality

    return TextModality()


@pytest.fixture
def tiny_denoiser():
    """A tiny ``unet_text`` denoiser (random UNet, random text tower) of ``sample_size`` pixels."""
    import torch

    from mcdm_text.denoiser import TextUNetDenoiser

    def make(sample_size: int = 16, seed: int = 0, **overrides):
        torch.manual_seed(seed)
        config = {"sample_size": sample_size, "image_channels": 3, "block_out_channels": (8, 16),
                  "attention_head_dim": 2, "text_cfg": TINY_TEXT_CFG, **overrides}
        return TextUNetDenoiser.build(**config).eval()

    return make


@pytest.fixture
def tiny_clip_config():
    import copy

    return copy.deepcopy(TINY_CLIP)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a shared CPU waiting threads make them many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
