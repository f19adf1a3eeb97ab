"""examples/dataset_mixing.py runs end to end on tiny models and writes one row per combiner."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import TINY_TEXT, ddpm_schedule
from mcdm.checkpoint import save_model
from mcdm.eval.judges import AttributeJudge, Judges, ParsingJudge

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "dataset_mixing.py"
SCHEDULE = ddpm_schedule()

pytestmark = pytest.mark.filterwarnings("ignore:Matrix is singular")


def test_dataset_mixing_example_compares_the_combiners(plugins, tmp_path):
    spec = importlib.util.spec_from_file_location("dataset_mixing", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    torch.manual_seed(0)
    unet = plugins.denoiser_class("unet")
    small = {"block_out_channels": (8, 16), "layers_per_block": 1, "attention": False}
    save_model(tmp_path / "prior", unet.build(sample_size=32, **small), modality=None, schedule_config=SCHEDULE)
    save_model(tmp_path / "seg", unet.build(sample_size=32, cond_channels=20, **small), modality="segmentation",
               schedule_config=SCHEDULE)
    text = plugins.denoiser_class("unet_text").build(sample_size=32, block_out_channels=(8, 16), attention_head_dim=2,
                                                     text_cfg=TINY_TEXT)
    save_model(tmp_path / "text", text, modality="text", schedule_config=SCHEDULE)
    Judges(ParsingJudge.build(), AttributeJudge.build()).save(tmp_path / "judges")

    merged = example.run(tmp_path / "seg", tmp_path / "text", tmp_path / "prior", tmp_path / "judges", n=2,
                         mixture=0.3, steps=2, out=tmp_path / "out", reference=4, ddpm_steps=2)
    names = [row["name"] for row in merged["rows"]]
    assert names == ["segmentation alone", "text alone", "segmentation + text, shared prior",
                     "segmentation + text, own baseline", "segmentation + text, mixture of priors",
                     "segmentation + text, mixture of priors, ddpm 2", "segmentation + text, OR of the priors, ddpm 2"]
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["mixture"] == 0.3 and len(saved["rows"]) == 7
    assert (tmp_path / "out" / "mixture-of-priors" / "samples.png").is_file()
    assert (tmp_path / "out" / "OR-of-the-priors-ddpm-2" / "samples.png").is_file()
    sheet = Image.open(tmp_path / "out" / "comparison.png")
    assert sheet.height == 9 * (64 + 2) + 2  # the face, its mask and the seven rows, each tile 32x32 shown at 64
