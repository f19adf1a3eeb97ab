"""examples/thumbnail_composition.py joins an outside plugin's model to a composition and scores its layout."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import TINY_TEXT, ddpm_schedule
from mcdm.checkpoint import save_model
from mcdm.eval.judges import AttributeJudge, Judges, ParsingJudge

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "thumbnail_composition.py"
SCHEDULE = ddpm_schedule()
SMALL = {"sample_size": 32, "block_out_channels": (8, 16), "layers_per_block": 1, "attention": False}

pytestmark = pytest.mark.filterwarnings("ignore:Matrix is singular")


@pytest.fixture(scope="module")
def example():
    pytest.importorskip("mcdm_thumbnail")
    spec = importlib.util.spec_from_file_location("thumbnail_composition", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_layout_error_is_zero_for_the_face_itself_and_the_mean_cell_difference_otherwise(example):
    faces = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert example.layout_error(faces, faces) == 0.0
    brighter = faces.astype(np.int64) + 51
    clipped = np.clip(brighter, 0, 255).astype(np.uint8)
    expected = (clipped.astype(np.float64) - faces).mean() / 255.0  # cell means are linear in the pixels
    assert example.layout_error(clipped, faces) == pytest.approx(expected)


def test_the_thumbnail_joins_the_composition_unchanged_and_gets_a_row_of_its_own(example, plugins, tmp_path):
    torch.manual_seed(0)
    unet = plugins.denoiser_class("unet")
    composition = tmp_path / "composition"
    save_model(composition / "prior", unet.build(**SMALL), modality=None, schedule_config=SCHEDULE)
    for name, channels in (("sketch", 1), ("segmentation", 20)):
        save_model(composition / name, unet.build(cond_channels=channels, **SMALL), modality=name,
                   schedule_config=SCHEDULE)
    text = plugins.denoiser_class("unet_text").build(sample_size=32, block_out_channels=(8, 16), attention_head_dim=2,
                                                     text_cfg=TINY_TEXT)
    save_model(composition / "text", text, modality="text", schedule_config=SCHEDULE)
    (composition / "composition.yaml").write_text(yaml.safe_dump({
        "name": "tiny", "prior": "prior", "steps": 2,
        "modalities": {m: {"path": m, "baseline": "own"} for m in ("sketch", "segmentation", "text")}}))
    save_model(tmp_path / "thumbnail", unet.build(cond_channels=4, **SMALL), modality="thumbnail",
               schedule_config=SCHEDULE)
    Judges(ParsingJudge.build(), AttributeJudge.build()).save(tmp_path / "judges")
    before = (composition / "composition.yaml").read_text()

    results = example.run(composition, tmp_path / "thumbnail", tmp_path / "judges", n=2, steps=2,
                          out=tmp_path / "out", reference=4)

    assert [row["name"] for row in results["rows"]] == [
        "prior", "thumbnail", "sketch + segmentation + text", "sketch + segmentation + text + thumbnail"]
    assert all(0.0 <= row["figures"]["layout_error"] <= 1.0 for row in results["rows"])
    assert (composition / "composition.yaml").read_text() == before
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "layout_error" in saved["rows"][-1]["figures"]
    assert "layout error" in (tmp_path / "out" / "results.md").read_text()
    assert (tmp_path / "out" / "comparison.png").is_file()
