"""The evaluation runner on tiny random models and judges: structure, sample counts, and the ceiling."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from mcdm.checkpoint import save_model
from mcdm.cli import cli
from mcdm.compose import Composer
from mcdm.eval.evaluate import evaluate
from mcdm.eval.inputs import face_parts
from mcdm.eval.pictures import write_pictures
from mcdm.eval.rows import Row, methods_rows, negation_rows, partial_input_rows, standard_rows
from mcdm.eval.scoring import FIGURES, REALISM, min_ratios, modality_drops, score
from mcdm.eval.tables import drops_table, markdown_table, write_tables
from mcdm.eval.judges import AttributeJudge, Judges, ParsingJudge
from mcdm.plugins import make_plugin_manager

# a handful of faces gives singular feature covariances: the Fréchet distance is still defined, scipy warns
pytestmark = pytest.mark.filterwarnings("ignore:Matrix is singular")

SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2"}


@pytest.fixture
def composition(tmp_path):
    plugins = make_plugin_manager(strict=True)
    unet = plugins.denoiser_class("unet")
    small = {"block_out_channels": (8, 16), "layers_per_block": 1, "attention": False}
    torch.manual_seed(0)
    save_model(tmp_path / "prior", unet.build(sample_size=32, **small), modality=None, schedule_config=SCHEDULE)
    for name, channels in (("sketch", 1), ("segmentation", 20)):
        save_model(tmp_path / name, unet.build(sample_size=32, cond_channels=channels, **small), modality=name,
                   schedule_config=SCHEDULE)
    (tmp_path / "composition.yaml").write_text(yaml.safe_dump({
        "prior": "prior", "steps": 2,
        "modalities": {"sketch": {"path": "sketch"}, "segmentation": {"path": "segmentation"}},
    }))
    Judges(ParsingJudge.build(), AttributeJudge.build()).save(tmp_path / "judges")
    return tmp_path


def test_rows_cover_every_subset():
    names = [row.name for row in standard_rows(["sketch", "segmentation", "text"])]
    assert names == ["prior", "sketch", "segmentation", "text", "sketch + segmentation", "sketch + text",
                     "segmentation + text", "sketch + segmentation + text", "all, own baselines",
                     "all but sketch, own baselines", "all but segmentation, own baselines",
                     "all but text, own baselines"]


def test_the_sketch_gap_credits_a_face_s_own_sketch_and_not_any_face_outline():
    """Samples that are each face's own sketch drawn as edges score a large gap; the same edges shown against
    the wrong faces score a gap near zero or below, where edge F1 alone would still be high."""
    from mcdm.data.sketch import sketch_from_image
    from mcdm.data.synthfaces import SynthFaces
    from mcdm.eval.inputs import targets_for

    faces = [SynthFaces(size=32, seed=0, split="test", length=8)[i] for i in range(8)]
    targets = targets_for(faces, "full")
    judges = SimpleNamespace(parsing=SimpleNamespace(parse=lambda images: np.zeros((len(images), 32, 32), np.uint8)),
                             attributes=SimpleNamespace(predict=lambda images: [JUDGED] * len(images)))
    images = np.stack([face.image for face in faces])
    own = score(images, targets, judges)
    assert own["edge_f1"] == pytest.approx(np.mean([1.0 * (sketch_from_image(f.image) > 0).any() for f in faces]))
    shuffled = score(images[::-1].copy(), targets, judges)  # every sample is another face
    assert own["sketch_gap"] > 0.3 and shuffled["sketch_gap"] < 0.1
    assert shuffled["edge_f1"] > own["edge_f1"] - 0.5  # edge F1 alone stays high for the wrong faces
    assert own["sketch_gap.sd"] >= 0


def test_modality_drops_subtract_the_row_without_each_modality_in_the_same_form():
    def row(modalities, baseline, **figures):
        base = {"mask_iou": 0.5, "edge_f1": 0.9, "sketch_gap": 0.2, "sketch_gap.sd": 0.05, "attribute_accuracy": 0.7,
                "fd": 20.0, "sketch_gap.faces": [0.1, 0.3]}
        return {"name": "", "modalities": modalities, "baseline": baseline, "figures": {**base, **figures}}

    results = {"rows": [row(("sketch", "text"), "shared"), row(("sketch",), "shared", attribute_accuracy=0.5),
                        row(("text",), "shared", sketch_gap=0.0, **{"sketch_gap.faces": [0.1, 0.1]}),
                        row(("sketch", "text"), "own", mask_iou=0.6),
                        row(("sketch",), "own"), row(("text",), "own", edge_f1=0.8)]}
    drops = {(d["form"], d["dropped"]): d for d in modality_drops(results)}
    assert drops[("shared", "text")]["attribute_accuracy"] == pytest.approx(0.2)
    assert drops[("shared", "sketch")]["sketch_gap"] == pytest.approx(0.2)
    assert drops[("shared", "sketch")]["sketch_gap.drop_sd"] == pytest.approx(0.1)  # per-face drops 0 and 0.2
    assert drops[("own", "sketch")]["edge_f1"] == pytest.approx(0.1)
    assert drops[("own", "text")]["mask_iou"] == pytest.approx(0.1)
    assert "| own baselines | sketch |" in drops_table(list(drops.values()))
    assert "| +0.200 (0.100) |" in drops_table([drops[("shared", "sketch")]])


def test_negation_rows_give_the_eyeglasses_caption_at_both_signs_and_forms():
    rows = negation_rows(["sketch", "text"], face_parts(make_plugin_manager(), ["sketch", "text"]))
    assert [r.name for r in rows] == ["prior", "text at +1, shared baseline", "text at +1, own baseline",
                                      "text at -1, shared baseline", "text at -1, own baseline"]
    assert {r.inputs for r in rows} == {"eyeglasses"}


JUDGED = {"hair_color": "black", "eyeglasses": False, "smiling": True, "hat": False, "beard": False}


def test_score_gives_each_captioned_attribute_its_own_accuracy():
    blank = np.zeros((32, 32), np.uint8)
    targets = [SimpleNamespace(mask=blank, edge_region=None, edge_reference=blank, caption=caption)
               for caption in ("The person is smiling. The person wears eyeglasses.", "The person is not smiling.")]
    judged = {"hair_color": "black", "eyeglasses": False, "smiling": True, "hat": False, "beard": False}
    judges = SimpleNamespace(parsing=SimpleNamespace(parse=lambda images: np.zeros((len(images), 32, 32), np.uint8)),
                             attributes=SimpleNamespace(predict=lambda images: [judged] * len(images)))
    figures = score(np.zeros((2, 32, 32, 3), np.uint8), targets, judges)
    assert figures["attribute_accuracy.smiling"] == 0.5  # right for the first caption, wrong for the second
    assert figures["attribute_accuracy.eyeglasses"] == 0.0
    assert figures["attribute_accuracy"] == pytest.approx(1 / 3)  # over the three stated attributes
    assert not any(f"attribute_accuracy.{name}" in figures for name in ("hair_color", "hat", "beard"))  # unstated


def test_evaluate_scores_every_row_on_the_same_faces(composition, tmp_path):
    composer = Composer.from_pretrained(composition)
    judges = Judges.load(composition / "judges")
    rows = standard_rows(list(composer.modalities))
    results = evaluate(composer, judges, rows, n=3, batch_size=2, reference=6, diversity_faces=2,
                       diversity_samples=2, progress=False)
    assert [r["name"] for r in results["rows"]] == [r.name for r in rows]
    def per_attribute(figures):
        return {f for f in figures if f.startswith("attribute_accuracy.")}

    gap = {"sketch_gap", "sketch_gap.sd", "sketch_gap.faces"}
    assert set(results["ceiling"]) - per_attribute(results["ceiling"]) == {*FIGURES, *gap, "fd"}
    for row in [results["ceiling"], *(r["figures"] for r in results["rows"])]:
        assert all(0.0 <= row[f] <= 1.0 for f in [*FIGURES, *per_attribute(row)]) and row["fd"] >= 0.0
        assert per_attribute(row)  # every caption states some attributes
    for row in results["rows"]:
        assert set(row["figures"]) - per_attribute(row["figures"]) == {*FIGURES, *gap, *REALISM}
        assert row["figures"]["diversity"] > 0.0  # different seeds, different images
    assert results["ceiling"]["edge_f1"] == pytest.approx(1.0)  # a face's sketch is its own Canny edges
    assert all(images.shape == (3, 32, 32, 3) for images in results["samples"].values())
    table = markdown_table(results, face_parts(composer.plugins, composer.modalities))
    write_tables(results, tmp_path / "out", table)
    write_pictures(results, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["n"] == 3 and "samples" not in saved and "real" not in saved
    assert "3 held-out faces per row" in table and (tmp_path / "out" / "results.md").read_text() == table
    assert (tmp_path / "out" / "samples.png").is_file() and (tmp_path / "out" / "figures.png").is_file()
    with Image.open(tmp_path / "out" / "composed_vs_real.png") as sheet:  # two grids of 2x2 tiles of 64 px
        assert sheet.width > 4 * 64 and sheet.height > 2 * 64


def test_eval_command(composition, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["eval", "--model", str(composition), "--judges", str(composition / "judges"), "--n", "2",
         "--reference", "4", "--diversity-samples", "2", "--out", str(tmp_path / "ev")],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ev" / "results.md").is_file()


def test_partial_rows_change_their_inputs_and_options_and_leave_the_composer_as_it_was(composition):
    composer = Composer.from_pretrained(composition)
    judges = Judges.load(composition / "judges")
    rows = partial_input_rows(list(composer.modalities), face_parts(composer.plugins, composer.modalities))
    by_name = {row.name: row for row in rows}
    assert {"all (partial)", "all (partial), no weight map", "all (upper face), 1 corrector step",
            "all (upper face), sketch until t = 0.2T", "segmentation (partial)"} <= set(by_name)
    chosen = [by_name[name] for name in ("all (partial)", "all (partial), no weight map",
                                         "all (partial), 1 corrector step")]
    before = composer.defaults
    results = evaluate(composer, judges, chosen, n=2, reference=4, diversity_faces=0, progress=False)
    assert composer.defaults == before
    assert [row["inputs"] for row in results["rows"]] == ["partial"] * 3
    default, unweighted, _ = (results["samples"][row.name] for row in chosen)
    assert not np.array_equal(default, unweighted)  # the known-region weights matter for a half-known mask
    # the row's sampling options reach the sampler (random models saturate, so their images barely differ)
    with pytest.raises(ValueError, match="rescaled state"):
        evaluate(composer, judges, chosen[2:], n=2, reference=4, diversity_faces=0, scheduler="euler", progress=False)


def test_eval_command_with_tuned_weights_and_a_joint_oracle(composition, tmp_path):
    plugins = make_plugin_manager(strict=True)
    torch.manual_seed(0)
    joint = plugins.denoiser_class("unet_joint").build(
        sample_size=32, cond_channels=21, block_out_channels=(8, 16), attention_head_dim=2,
        text_cfg={"context_length": 64, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1})
    save_model(tmp_path / "joint", joint, modality="joint", schedule_config=SCHEDULE)
    result = CliRunner().invoke(
        cli,
        ["eval", "--model", str(composition), "--judges", str(composition / "judges"), "--n", "2", "--reference", "4",
         "--diversity-samples", "0", "--tune", "2", "--oracle", str(tmp_path / "joint"), "--out", str(tmp_path / "ev")],
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "ev" / "results.json").read_text())
    names = [row["name"] for row in saved["rows"]]
    assert names[-1] == "joint oracle" and names[-2].startswith("all, tuned weights (")
    trials = saved["tuning"]["trials"]
    assert trials[0]["weights"] == {"segmentation": 1.0, "sketch": 1.0} and len(trials) == 1 + 2 * 4
    assert saved["tuning"]["weights"] == max(trials, key=lambda t: t["objective"])["weights"]


def test_min_ratio_is_the_worst_modality_against_itself_alone():
    def row(name, modalities, **figures):
        return {"name": name, "modalities": modalities, "inputs": "full", "figures": figures}

    results = {"rows": [row("sketch", ("sketch",), sketch_gap=0.5), row("text", ("text",), attribute_accuracy=0.8),
                        row("both", ("sketch", "text"), sketch_gap=0.45, attribute_accuracy=0.6),
                        row("segmentation", ("segmentation",), mask_iou=0.0),
                        row("all", ("sketch", "text", "segmentation"), sketch_gap=0.5, attribute_accuracy=0.8,
                            mask_iou=0.7)]}
    min_ratios(results, {"sketch": ("sketch",), "text": ("caption",), "segmentation": ("mask",)})
    ratios = [r["min_ratio"] for r in results["rows"]]
    assert ratios[:3] == [1.0, 1.0, pytest.approx(0.75)]  # text: 0.6 / 0.8 below the sketch's 0.45 / 0.5
    assert ratios[3:] == [None, None]  # no ratio to a figure of 0


def test_methods_rows_record_calls_seconds_and_what_each_method_did(composition, tmp_path):
    names = [row.name for row in methods_rows(["sketch", "segmentation"], sde_steps=1)]
    assert names == ["sketch", "segmentation", "naive sum", "naive sum, ddpm 1", "naive sum, the methods' ddpm 1",
                     "balanced AND, ddpm 1",
                     "MALA, 1 corrector step", "particles K = 2, ddpm 1", "particles K = 4, ddpm 1",
                     "particles K = 8, ddpm 1"]
    result = CliRunner().invoke(
        cli,
        ["eval", "--model", str(composition), "--judges", str(composition / "judges"), "--n", "2", "--rows",
         "methods", "--ddpm-steps", "2", "--reference", "4", "--diversity-samples", "0", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads((tmp_path / "results.json").read_text())["rows"]}
    calls = {name: row["calls_per_image"] for name, row in rows.items()}
    # shared baselines: the prior and each modality once per step, 2 steps; MALA's chain adds 2 predictions
    # after the first step, the second of which the last step reuses
    assert calls == {"sketch": 4, "segmentation": 4, "naive sum": 6, "naive sum, ddpm 2": 6,
                     "naive sum, the methods' ddpm 2": 12,  # two particles, never reweighted
                     "balanced AND, ddpm 2": 6, "MALA, 1 corrector step": 9,
                     "particles K = 2, ddpm 2": 12, "particles K = 4, ddpm 2": 24, "particles K = 8, ddpm 2": 48}
    assert all(row["seconds_per_image"] > 0 for row in rows.values())
    assert rows["sketch"]["min_ratio"] in (1.0, None) and rows["segmentation"]["min_ratio"] in (1.0, None)
    assert 0.0 <= rows["MALA, 1 corrector step"]["trace"]["acceptance"] <= 1.0
    assert 0.0 < rows["particles K = 4, ddpm 2"]["trace"]["ess_fraction"] <= 1.0 and rows["naive sum"]["trace"] == {}
    assert rows["naive sum, the methods' ddpm 2"]["trace"] == {}  # its particles are never weighed
    table = (tmp_path / "results.md").read_text()
    assert "| min ratio | FD | calls / image | s / image |" in table and "| particles K = 8, ddpm 2 |" in table


def test_eval_resumes_the_rows_a_run_finished_and_runs_only_the_named_ones(composition, tmp_path):
    names = [row.name for row in standard_rows(list(Composer.from_pretrained(composition).modalities))]
    out = tmp_path / "ev"

    def run(*extra):
        result = CliRunner().invoke(cli, ["eval", "--model", str(composition), "--judges", str(composition / "judges"),
                                          "--n", "2", "--reference", "4", "--diversity-samples", "0",
                                          "--out", str(out), *extra])
        rows = json.loads((out / "results.json").read_text())["rows"] if result.exit_code == 0 else None
        return result, rows

    result, first = run("--only", names[1], "--only", names[0])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in first] == names[:2]  # the row set's order, not the options'
    assert len(list((out / "rows").glob("*.json"))) == len(list((out / "rows").glob("*.npy"))) == 2
    result, resumed = run("--resume")
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in resumed] == names
    # the finished rows are taken as they were (their timing too), the rest generated
    assert resumed[:2] == [{**r, "min_ratio": resumed[i]["min_ratio"]} for i, r in enumerate(first)]
    result, other_seed = run("--resume", "--seed", "1", "--only", names[0])
    assert result.exit_code == 0, result.output
    assert other_seed[0]["seconds"] != first[0]["seconds"]  # another run's row: generated anew
    (composition / "clip").mkdir()  # a file a modality may read beside the models (the text plugin's CLIP)
    (composition / "clip" / "config.json").write_text("{}")
    result, other_files = run("--resume", "--only", names[0])
    assert result.exit_code == 0, result.output
    assert other_files[0]["seconds"] != first[0]["seconds"]
    result, _ = run("--only", "no such row")
    assert result.exit_code != 0 and "no row named 'no such row'" in result.output


def test_a_latent_composition_is_scored_at_its_image_size_by_judges_of_half_that_size(tmp_path):
    """Latents 16x16 decode to 32x32 faces: the held-out faces (inputs and targets) are drawn at 32x32, and
    judges trained at 16x16 read the samples and the real faces averaged down."""
    from test_train_latent import write_vae  # the tiny scale-2 VAE the latent training tests use

    write_vae(tmp_path / "vae")
    unet = make_plugin_manager(strict=True).denoiser_class("unet")
    small = {"sample_size": 16, "image_channels": 4, "block_out_channels": (8, 16), "layers_per_block": 1,
             "attention": False}
    save_model(tmp_path / "prior", unet.build(**small), modality=None, schedule_config=SCHEDULE, vae=tmp_path / "vae")
    save_model(tmp_path / "sketch", unet.build(cond_channels=1, **small), modality="sketch", schedule_config=SCHEDULE,
               vae=tmp_path / "vae")
    (tmp_path / "composition.yaml").write_text(yaml.safe_dump(
        {"prior": "prior", "steps": 2, "modalities": {"sketch": {"path": "sketch"}}}))
    composer = Composer.from_pretrained(tmp_path)
    assert (composer.sample_size, composer.image_size) == (16, 32)
    judges = Judges(ParsingJudge.build(image_size=16), AttributeJudge.build(image_size=16))
    results = evaluate(composer, judges, [Row("sketch", ("sketch",))], n=2, reference=2, diversity_faces=0,
                       progress=False)
    assert results["samples"]["sketch"].shape == (2, 32, 32, 3)
    assert all(np.isfinite(results["rows"][0]["figures"][name]) for name in FIGURES)
