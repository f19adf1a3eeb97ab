"""docs/training.md: its key tables are the ones generated from each trainer's config; the EMA warm-up it states."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mcdm.config_reference import markers, rows, trainer_table, with_every_table
from mcdm.train import TrainConfig, _ema_update

DOC = Path(__file__).resolve().parent.parent / "docs" / "training.md"


KINDS = ("denoiser", "clip", "judges", "vae")


def test_the_docs_tables_are_the_ones_generated_from_the_config_dataclasses():
    text = DOC.read_text()
    assert all(markers(kind)[0] in text and markers(kind)[1] in text for kind in KINDS)
    assert with_every_table(text) == text, "run: python -m mcdm.config_reference docs/training.md"


def test_every_key_is_in_the_table_with_a_description():
    keys = {key for key, *_ in rows(TrainConfig)}
    assert {"schedule", "prediction", "threads", "grad_accum", "keep_checkpoints", "log_every", "weight_decay",
            "seed", "init_from", "ema_decay", "data.size", "denoiser"} <= keys
    assert all(doc for *_, doc in rows(TrainConfig))


def test_a_key_without_a_description_is_refused():
    from dataclasses import dataclass

    @dataclass
    class Undocumented:
        steps: int = 1

    with pytest.raises(ValueError, match="'steps' has no description"):
        rows(Undocumented)


@pytest.mark.parametrize("kind", KINDS)
def test_help_config_prints_each_kinds_table(kind):
    mcdm = str(Path(sys.executable).parent / "mcdm")
    result = subprocess.run([mcdm, "train", kind, "--help-config"], capture_output=True, text=True, check=True)
    assert result.stdout == trainer_table(kind) and result.stdout in DOC.read_text()


def test_an_unknown_kind_and_a_missing_config_are_one_line_errors():
    mcdm = str(Path(sys.executable).parent / "mcdm")
    unknown = subprocess.run([mcdm, "train", "nope", "--help-config"], capture_output=True, text=True)
    assert unknown.returncode != 0 and "unknown trainer 'nope'; installed: clip, denoiser, judges, vae" in unknown.stderr
    missing = subprocess.run([mcdm, "train", "judges"], capture_output=True, text=True)
    assert missing.returncode != 0 and "needs a CONFIG file" in missing.stderr


def test_the_ema_warms_up_as_the_docs_state():
    """decay = min(ema_decay, (1 + step) / (10 + step)): 0.1 after the first step, then towards ema_decay."""
    model, ema = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    for step, decay in [(0, 0.1), (8, 0.5), (9_990, 0.999), (50_000, 0.999)]:
        ema.weight.data.fill_(0.0)
        model.weight.data.fill_(1.0)
        _ema_update(ema, model, 0.999, step)
        assert ema.weight.item() == pytest.approx(1 - decay, abs=1e-6)  # ema <- decay * ema + (1 - decay) * model
