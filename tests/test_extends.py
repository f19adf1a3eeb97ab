"""A composition extending another (``extends:``) keeps every setting it does not change; ``--add-model``."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ddpm_schedule
from mcdm.checkpoint import save_model, write_checksums
from mcdm.compose import Composer
from mcdm.demo import EXAMPLES
from mcdm.errors import CheckpointError, ConfigError
from mcdm.pretrained import open_composition, resolve
from mcdm.schedule import Prediction

SMALL = {"sample_size": 32, "block_out_channels": (8, 16), "layers_per_block": 1, "attention": False}
FACE = EXAMPLES / "face-0"
pytestmark = pytest.mark.filterwarnings("ignore::mcdm.errors.UnverifiedModelWarning")
SHIPPED_CONDITIONS = {"sketch": FACE / "sketch.png", "segmentation": FACE / "segmentation.png",
                      "text": (FACE / "text.txt").read_text().strip()}


def write_composition(folder: Path, mapping: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "composition.yaml").write_text(yaml.safe_dump(mapping))
    return folder


@pytest.fixture
def thumbnail_model(tmp_path, plugins):
    """An untrained thumbnail model on the shipped models' schedule and parameterisation."""
    pytest.importorskip("mcdm_thumbnail")
    torch.manual_seed(0)
    denoiser = plugins.denoiser_class("unet").build(cond_channels=4, **SMALL)
    return save_model(tmp_path / "thumbnail", denoiser, modality="thumbnail", schedule_config=ddpm_schedule(),
                      prediction=Prediction.V)


def test_extending_the_shipped_composition_with_a_model_given_no_condition_reproduces_its_images(
        tmp_path, thumbnail_model):
    mine = write_composition(tmp_path / "mine", {"name": "mine", "extends": "synthfaces-32",
                                                 "modalities": {"thumbnail": {"path": "../thumbnail"}}})
    shipped_folder, shipped = open_composition("synthfaces-32")
    _, extended = open_composition(mine)

    assert list(extended.modalities) == ["sketch", "segmentation", "text", "thumbnail"]
    for name, setting in shipped.modalities.items():  # baseline: own and the rest, kept
        assert extended.modalities[name].baseline == setting.baseline
        assert Path(extended.modalities[name].path) == (shipped_folder / setting.path).resolve()
    assert (extended.scheduler, extended.steps) == (shipped.scheduler, shipped.steps)

    expected = Composer.from_pretrained("synthfaces-32").generate_tensor(SHIPPED_CONDITIONS, num_images=2, steps=3,
                                                                         seed=7, progress=False)
    images = Composer.from_pretrained(mine).generate_tensor(SHIPPED_CONDITIONS, num_images=2, steps=3, seed=7,
                                                            progress=False)
    assert torch.equal(images, expected)


def test_an_extending_file_changes_only_what_it_names_and_null_removes_a_modality(tmp_path):
    mine = write_composition(tmp_path / "mine", {"extends": "synthfaces-32", "steps": 10, "modalities": {
        "text": {"weight": 1.5}, "sketch": None}})
    _, config = open_composition(mine)
    assert list(config.modalities) == ["segmentation", "text"]
    assert config.modalities["text"].weight == 1.5 and config.modalities["text"].baseline.value == "own"
    assert config.steps == 10 and config.scheduler == "dpm++" and config.name == "synthfaces-32"


def test_the_extended_composition_is_found_by_path_relative_to_the_extending_one_and_verified(tmp_path, plugins):
    base = tmp_path / "base"
    save_model(base / "prior", plugins.denoiser_class("unet").build(**SMALL), modality=None,
               schedule_config=ddpm_schedule())
    write_composition(base, {"name": "base", "prior": "prior", "scheduler": "ddim"})
    write_checksums(base)
    mine = write_composition(tmp_path / "deeper" / "mine", {"extends": "../../base"})
    _, config = open_composition(mine)
    assert Path(config.prior) == (base / "prior").resolve() and config.scheduler == "ddim"

    with open(base / "prior" / "mcdm.json", "a") as f:  # tampered after its SHA256SUMS was written
        f.write(" ")
    with pytest.raises(CheckpointError, match="does not match its SHA-256"):
        open_composition(mine)


def test_extending_itself_or_nothing_is_refused(tmp_path):
    a = write_composition(tmp_path / "a", {"extends": "../b"})
    write_composition(tmp_path / "b", {"extends": "../a", "prior": "p"})
    with pytest.raises(ConfigError, match="extends itself"):
        open_composition(a)
    empty = write_composition(tmp_path / "c", {"extends": ""})
    with pytest.raises(ConfigError, match="extends must name a composition"):
        open_composition(empty)
    with pytest.raises(CheckpointError, match="no model folder 'no-such-composition'"):
        open_composition(write_composition(tmp_path / "d", {"extends": "no-such-composition"}))


def test_add_model_composes_a_folder_with_the_shipped_composition_for_one_call(tmp_path, thumbnail_model):
    mcdm = str(Path(sys.executable).parent / "mcdm")
    result = subprocess.run(
        [mcdm, "generate", "--add-model", f"thumbnail={thumbnail_model}", "--cond",
         f"thumbnail={FACE / 'reference.png'}", "--steps", "1", "--num-images", "1", "--out", str(tmp_path / "a.png")],
        capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.png").is_file()
    assert resolve("synthfaces-32").is_dir()
