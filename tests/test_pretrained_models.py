"""The shipped composition, pretrained/synthfaces-32: checksums, configs, output shapes, and a composed sample."""

import shutil
from pathlib import Path

import pytest
import torch

from mcdm.checkpoint import load_model, verify_checksums
from mcdm.compose import Composer
from mcdm.errors import CheckpointError
from mcdm.plugins import make_plugin_manager

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "synthfaces-32"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "inputs" / "face-0"
MODELS = {"prior": None, "sketch": "sketch", "segmentation": "segmentation", "text": "text"}


@pytest.fixture(scope="module")
def plugins():
    return make_plugin_manager()


def test_shipped_checksums_hold_and_catch_a_changed_byte(tmp_path):
    verify_checksums(SHIPPED)
    copy = shutil.copytree(SHIPPED, tmp_path / "copy")
    weights = copy / "sketch" / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        verify_checksums(copy)


@pytest.mark.parametrize("folder, modality", MODELS.items())
def test_shipped_model_config_and_output_shape(plugins, folder, modality):
    model = load_model(SHIPPED / folder, plugins)
    assert model.modality == modality
    assert model.prediction.value == "v_prediction"
    assert model.schedule_config["beta_schedule"] == "linear"
    assert model.schedule_config["num_train_timesteps"] == 1000
    x_t = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    cond = None
    if modality is not None:
        raw = {"sketch": EXAMPLE / "sketch.png", "segmentation": EXAMPLE / "segmentation.png",
               "text": (EXAMPLE / "text.txt").read_text().strip()}[modality]
        cond = plugins.modality(modality).prepare(str(raw) if isinstance(raw, Path) else raw, size=32)[None]
    with torch.no_grad():
        out = model.denoiser.eval()(x_t, torch.tensor([10, 900]), cond)
    assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()


def test_shipped_clip_text_tower_is_the_text_models(plugins):
    from mcdm_text.clip import load_clip

    clip, config = load_clip(SHIPPED / "clip")
    text_model = load_model(SHIPPED / "text", plugins).denoiser
    assert config["text_cfg"] == text_model.text_cfg
    tower = clip.text.state_dict()
    for name, weight in text_model.text_encoder.state_dict().items():
        assert torch.equal(weight, tower[name]), name


def test_shipped_composition_generates_by_name():
    composer = Composer.from_pretrained("synthfaces-32")
    assert set(composer.models) == {"sketch", "segmentation", "text"}
    conditions = {"sketch": str(EXAMPLE / "sketch.png"), "segmentation": str(EXAMPLE / "segmentation.png"),
                  "text": (EXAMPLE / "text.txt").read_text().strip()}
    images = composer.generate_tensor(conditions, num_images=2, steps=2, seed=0, progress=False)
    assert images.shape == (2, 3, 32, 32) and images.abs().max() <= 1.0


def test_shipped_clip_scores_faces_higher_with_their_own_captions():
    import numpy as np

    from mcdm.data import SynthFaces
    from mcdm_text.clip import ClipScorer

    faces = SynthFaces(size=32, seed=0, split="test", length=32)
    images = np.stack([face.image for face in faces])
    captions = [face.captions[0] for face in faces]
    scorer = ClipScorer.load(SHIPPED / "clip")
    own, shifted = scorer(images, captions), scorer(images, captions[1:] + captions[:1])
    assert own.mean() > shifted.mean() + 1.0
