"""The small CLIP: safetensors round trip, contrastive training that checkpoints and resumes, retrieval check."""

import csv
import json

import pytest
import torch
from safetensors.torch import load_file

from click.testing import CliRunner

from mcdm.cli import cli
from mcdm.config import load_config
from mcdm.errors import CheckpointError, ConfigError
from mcdm_text.clip import build_clip, clip_config, count_parameters, load_clip, save_clip
from mcdm_text.tokens import tokenize_batch
from mcdm_text.train_clip import ClipTrainConfig, contrast_loss, retrieval_accuracy, train_clip
from text_fixtures import TINY_CLIP, one_thread, tiny_clip_config  # noqa: F401  (fixtures)

FAST = ["batch_size=8", "checkpoint_every=2", "train_length=64", "warmup_steps=1", "lr_schedule=constant",
        "log_every=1"]


def train(run, steps, *overrides, resume=False):
    """Train the tiny CLIP for ``steps`` in all through the one config style (dataclass + KEY=VALUE)."""
    config = load_config(ClipTrainConfig, None, [f"out={run}", f"steps={steps}", *FAST, *overrides])
    config.clip = TINY_CLIP
    return train_clip(config, resume=resume, progress=False)


def losses(run):
    with open(run / "log.csv") as f:
        return [(int(r["step"]), r["loss"]) for r in csv.DictReader(f)]


def state(run, step):
    return json.loads((run / "checkpoints" / f"step-{step:07d}" / "state.json").read_text())


def test_save_and_load_clip_round_trip(tmp_path, tiny_clip_config):
    torch.manual_seed(0)
    model = build_clip(tiny_clip_config).eval()
    folder = save_clip(model, tiny_clip_config, tmp_path / "clip")
    assert sorted(p.name for p in folder.iterdir()) == ["clip_config.json", "model.safetensors"]
    loaded, config = load_clip(folder)
    assert config == tiny_clip_config
    images, tokens = torch.rand(2, 3, 32, 32) * 2 - 1, tokenize_batch(["She is smiling.", "He has a beard."])
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(images), model.encode_image(images))
        assert torch.equal(loaded.encode_text(tokens), model.encode_text(tokens))


def test_loading_refuses_missing_and_mismatched_files(tmp_path, tiny_clip_config):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_clip(tmp_path / "nowhere")
    folder = save_clip(build_clip(tiny_clip_config), tiny_clip_config, tmp_path / "clip")
    (folder / "clip_config.json").write_text(json.dumps({**tiny_clip_config, "embed_dim": 48}))
    with pytest.raises(CheckpointError, match="do not fit their config"):
        load_clip(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="not a CLIP folder: model.safetensors is missing"):
        load_clip(folder)


def test_default_clip_is_small_with_a_128_wide_two_layer_text_transformer():
    config = clip_config()
    assert config["text_cfg"] == {"context_length": 64, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 2}
    model = build_clip(config)
    assert count_parameters(model) < 8_000_000  # 6.3 M of it is the 49408-token embedding


def test_training_writes_a_loadable_clip_and_a_loss_log(tmp_path, tiny_clip_config):
    folder = train(tmp_path / "run", 3)
    model, config = load_clip(folder)
    assert config == tiny_clip_config
    assert [s for s, _ in losses(tmp_path / "run")] == [1, 2, 3]
    assert state(tmp_path / "run", 3)["step"] == 3
    accuracy = retrieval_accuracy(model, batch_size=16, batches=1)
    assert 0.0 <= accuracy <= 1.0


def test_the_exported_clip_records_how_it_was_trained_for_its_model_card(tmp_path):
    folder = train(tmp_path / "run", 2, "lr=3e-4")
    record = json.loads((folder / "trainer.json").read_text())  # scripts/write_model_card.py reads these keys
    assert record["step"] == 2
    assert {k: record["settings"][k] for k in ("batch_size", "train_length", "lr", "lr_schedule")} == {
        "batch_size": 8, "train_length": 64, "lr": 3e-4, "lr_schedule": "constant"}


def test_resumed_run_repeats_the_uninterrupted_one(tmp_path):
    whole = tmp_path / "whole"
    train(whole, 6)
    split = tmp_path / "split"
    train(split, 4)
    with open(split / "log.csv", "a") as f:  # a row logged after the last checkpoint, before a crash
        f.write("5,9.999,0,0\n")
    train(split, 6, resume=True)
    assert losses(split) == losses(whole) and [s for s, _ in losses(split)] == [1, 2, 3, 4, 5, 6]
    a, b = load_file(whole / "clip" / "model.safetensors"), load_file(split / "clip" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_falls_back_past_a_corrupt_newest_checkpoint(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(whole, 6)
    train(split, 4)
    newest = split / "checkpoints" / "step-0000004" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:-8])  # torn: its SHA256SUMS no longer matches
    train(split, 6, resume=True)  # from step 2
    a, b = load_file(whole / "clip" / "model.safetensors"), load_file(split / "clip" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a) and losses(split) == losses(whole)


def test_a_second_run_into_a_run_folder_needs_resume(tmp_path):
    train(tmp_path / "run", 2)
    with pytest.raises(ConfigError, match="already holds checkpoints: pass resume"):
        train(tmp_path / "run", 4)


def test_resuming_with_other_settings_is_refused(tmp_path):
    train(tmp_path / "run", 2)
    with pytest.raises(ConfigError, match="batch_size=8, this run asks for batch_size=4"):
        train(tmp_path / "run", 4, "batch_size=4", resume=True)


def test_hard_negatives_add_the_contrast_loss_and_are_part_of_the_resume_settings(tmp_path):
    plain, hard = tmp_path / "plain", tmp_path / "hard"
    train(plain, 2)
    train(hard, 2, "hard_negatives=1.0")
    (_, a), (_, b) = losses(plain)[0], losses(hard)[0]  # same weights, same batch: only the extra term differs
    assert float(b) > float(a)
    with pytest.raises(ConfigError, match="hard_negatives=1.0, this run asks for hard_negatives=0.0"):
        train(hard, 4, resume=True)
    with pytest.raises(ConfigError, match="a loss weight"):
        train(tmp_path / "bad", 2, "hard_negatives=-1.0")


def test_contrast_loss_is_the_cross_entropy_over_the_own_and_the_contrast_captions():
    images, texts = torch.nn.functional.normalize(torch.randn(2, 4, 8), dim=-1)
    scale = torch.tensor(10.0)
    # K contrast captions the image cannot tell from its own: log(K + 1)
    for k in (1, 3):
        same = texts[:, None].expand(-1, k, -1)
        torch.testing.assert_close(contrast_loss(images, texts, same, scale), torch.log(torch.tensor(k + 1.0)))
    # image = its caption, contrasts opposite: cosines 1 and -1, so log(1 + K exp(-2 scale))
    opposite = -texts[:, None].expand(-1, 3, -1)
    torch.testing.assert_close(contrast_loss(texts, texts, opposite, scale), torch.log1p(3 * torch.exp(-2 * scale)))


def test_several_contrasts_per_image_train_and_must_match_on_resume(tmp_path):
    run = tmp_path / "run"
    train(run, 2, "hard_negatives=1.0", "contrasts=3")
    assert state(run, 2)["settings"]["contrasts"] == 3
    with pytest.raises(ConfigError, match="contrasts=3, this run asks for contrasts=2"):
        train(run, 3, "hard_negatives=1.0", "contrasts=2", resume=True)
    with pytest.raises(ConfigError, match="must be 1 to 8"):
        train(tmp_path / "bad", 2, "hard_negatives=1.0", "contrasts=9")


def test_the_loss_goes_down_on_a_small_training_set(tmp_path):
    train(tmp_path / "run", 30, "train_length=8", "checkpoint_every=100", "lr=2e-3")
    values = [float(v) for _, v in losses(tmp_path / "run")]
    assert sum(values[-5:]) / 5 < sum(values[:5]) / 5 - 0.1


def test_mcdm_train_clip_is_registered_by_the_plugin_and_resumes(tmp_path):
    yaml = tmp_path / "clip.yaml"
    yaml.write_text(f"out: {tmp_path / 'run'}\nbatch_size: 4\neval_batches: 1\nclip: {json.dumps(TINY_CLIP)}\n")
    first = CliRunner().invoke(cli, ["train", "clip", str(yaml), "steps=1"])
    assert first.exit_code == 0, first.output
    assert "caption->image top-1 among 64" in first.output and "CLIP written to" in first.output
    again = CliRunner().invoke(cli, ["train", "clip", str(yaml), "steps=2", "--resume"])
    assert again.exit_code == 0, again.output
    assert [s for s, _ in losses(tmp_path / "run")] == [1, 2]
    load_clip(tmp_path / "run" / "clip")
    table = CliRunner().invoke(cli, ["train", "clip", "--help-config"])
    assert table.exit_code == 0 and "| `hard_negatives` |" in table.output


def test_clip_scorer_gives_one_cosine_score_per_image(tmp_path, tiny_clip_config):
    import numpy as np

    from mcdm_text.clip import ClipScorer

    torch.manual_seed(0)
    folder = save_clip(build_clip(tiny_clip_config), tiny_clip_config, tmp_path / "clip")
    scorer = ClipScorer.load(folder)
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    scores = scorer(images, ["a woman with red hair", "a bald man", "a smiling face"])
    assert scores.shape == (3,) and np.all(np.abs(scores) <= 100.0 + 1e-4)
    assert len(set(np.round(scores, 4))) == 3
    with pytest.raises(ValueError, match="3 images but 2 captions"):
        scorer(images, ["a", "b"])


def test_probe_reports_each_attributes_zero_shot_accuracy_and_its_floor(tmp_path, tiny_clip_config):
    from mcdm.data import SynthFaces
    from mcdm_text.clip import ClipScorer
    from mcdm_text.probe_clip import PROMPTS, probe

    torch.manual_seed(0)
    folder = save_clip(build_clip(tiny_clip_config), tiny_clip_config, tmp_path / "clip")
    faces = [SynthFaces(size=32, seed=0, split="test", length=24)[i] for i in range(24)]
    results = probe(ClipScorer.load(folder), faces)
    assert set(results) == set(PROMPTS)
    men = sum(f.attributes.gender == "male" for f in faces)
    assert results["beard"]["n"] == men and results["eyeglasses"]["n"] == 24
    assert all(0.0 <= r["accuracy"] <= 1.0 and 0.0 < r["majority"] <= 1.0 for r in results.values())


def test_probe_measures_how_alike_the_tower_finds_each_attribute_s_captions(tmp_path, tiny_clip_config):
    from mcdm_text.clip import ClipScorer
    from mcdm_text.probe_clip import PROMPTS, prompt_similarity

    torch.manual_seed(0)
    scorer = ClipScorer.load(save_clip(build_clip(tiny_clip_config), tiny_clip_config, tmp_path / "clip"))
    similarity = prompt_similarity(scorer)
    assert set(similarity) == set(PROMPTS)
    assert all(-1.0 <= value <= 1.0 + 1e-6 for value in similarity.values())
    smiling = scorer.caption_embeddings(list(PROMPTS["smiling"].values()))
    assert similarity["smiling"] == pytest.approx(float(smiling[0] @ smiling[1]), abs=1e-6)


def test_the_text_modality_scores_captions_with_the_clip_a_composition_ships(tmp_path, tiny_clip_config):
    import numpy as np

    from mcdm_text.clip import ClipScorer
    from mcdm_text.modality import TextModality

    assert TextModality().caption_scorer(tmp_path) is None  # no clip/ folder: no CLIP-score column
    save_clip(build_clip(tiny_clip_config).eval(), tiny_clip_config, tmp_path / "clip")
    scorer = TextModality().caption_scorer(tmp_path)
    assert isinstance(scorer, ClipScorer)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert scorer(images, ["a bald man", "a smiling face"]).shape == (2,)
