import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# The test models are tiny: one thread is as fast as two, and much faster when other work shares the cores.
torch.set_num_threads(1)

SIZE = 16
# The device tests that take one run on: MCDM_TEST_DEVICE=cuda selects the GPU (scripts/device-check.sh)
TEST_DEVICE = os.environ.get("MCDM_TEST_DEVICE", "cpu")
# A one-layer text tower for text models built in tests (the vocabulary is open_clip's tokenizer's)
TINY_TEXT = {"context_length": 64, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}


def ddpm_schedule(**overrides) -> dict:
    return {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02, **overrides}


@pytest.fixture
def full_fp32():
    """fp32 without TF32 on a GPU: cuDNN's default TF32 convolutions differ between kernels by ~1e-3."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.fixture(scope="session")
def plugins():
    from mcdm.plugins import make_plugin_manager

    return make_plugin_manager(strict=True)


@pytest.fixture
def make_model(tmp_path, plugins):
    """Save a tiny randomly initialised model folder and return its path."""
    import torch

    from mcdm.checkpoint import save_model

    def make(modality: str | None, *, seed: int = 0, schedule: dict | None = None, size: int = SIZE,
             prediction: str = "epsilon", name: str | None = None):
        torch.manual_seed(seed)
        cls = plugins.denoiser_class("unet")
        if modality is None:
            config = {"sample_size": size, "image_channels": 3, "cond_channels": 0, "block_out_channels": (8, 16),
                      "layers_per_block": 1, "attention": False}
        else:
            config = plugins.modality(modality).denoiser_config(sample_size=size, image_channels=3)
        denoiser = cls.build(**config)
        folder = tmp_path / (name or f"{modality or 'prior'}-{seed}")
        return save_model(folder, denoiser, modality=modality, schedule_config=schedule or ddpm_schedule(),
                          prediction=prediction)

    return make


@pytest.fixture
def make_composition(tmp_path, make_model):
    """A composition folder in tmp_path: a tiny prior, toy_a and toy_b (``toy_b``: its settings beyond the path),
    and ``map.png``, a grey map either toy modality reads."""
    import numpy as np
    import yaml
    from PIL import Image

    def make(*, steps: int, toy_b: dict | None = None):
        make_model(None, name="prior")
        make_model("toy_a", seed=1, name="toy_a")
        make_model("toy_b", seed=2, name="toy_b")
        config = {"name": "toy", "prior": "prior", "steps": steps,
                  "modalities": {"toy_a": {"path": "toy_a"}, "toy_b": {"path": "toy_b", **(toy_b or {})}}}
        (tmp_path / "composition.yaml").write_text(yaml.safe_dump(config))
        grey = (np.random.default_rng(0).random((SIZE, SIZE)) * 255).astype(np.uint8)
        Image.fromarray(grey).save(tmp_path / "map.png")
        return tmp_path

    return make


@pytest.fixture
def toy_composer(make_model, plugins):
    """A composer over a tiny prior and the four toy modalities."""
    from mcdm.checkpoint import load_model
    from mcdm.compose import Composer

    def build(names=("toy_a", "toy_b", "toy_c", "toy_d"), **kwargs):
        prior = load_model(make_model(None), plugins)
        models = {n: load_model(make_model(n, seed=i + 1), plugins) for i, n in enumerate(names)}
        return Composer(prior, models, plugins=plugins, steps=3, **kwargs)

    return build
