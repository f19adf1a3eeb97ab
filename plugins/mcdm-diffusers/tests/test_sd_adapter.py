"""The SD-family adapter on tiny components saved as a user's folders are, loaded through load_model and Composer."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from mcdm.checkpoint import load_model
from mcdm.cli import cli
from mcdm.combine import Baseline
from mcdm.compose import Composer
from mcdm.config import ModalityConfig
from mcdm.errors import CheckpointError, ConditionError, IncompatibleModelsError
from mcdm.grouped import GroupedEps
from mcdm.latent import load_vae
from mcdm.predictor import ComposedEps
from mcdm_diffusers.folders import write_model_folder
from mcdm_diffusers.prompt import PromptModality, decode_prompt
from mcdm_diffusers.testing import SAMPLE, SD_SCHEDULE, write_pipeline
from sd_fixtures import one_thread, plugins, sd_folders  # noqa: F401  (fixtures)

SHIPPED_SKETCH = Path(__file__).resolve().parents[3] / "pretrained" / "synthfaces-32" / "sketch"
IMAGE = 2 * SAMPLE


def sketch_image() -> np.ndarray:
    """White lines on black: a cross."""
    image = np.zeros((IMAGE, IMAGE), np.uint8)
    image[IMAGE // 2, :] = 255
    image[:, IMAGE // 2] = 255
    return image


def half_known_mask() -> np.ndarray:
    """Label ids: skin (1) on the left half, unknown (255) on the right: the ControlNet may speak on the left only."""
    ids = np.full((IMAGE, IMAGE, 1), 255, np.uint8)
    ids[:, : IMAGE // 2] = 1
    return ids


def composer(folders: Path, plugins, names=("prompt", "sketch", "segmentation"), settings=None, **kwargs):
    prior = load_model(folders / "prior", plugins, name="sd/prior")
    models = {name: load_model(folders / name, plugins, name=f"sd/{name}") for name in names}
    return Composer(prior, models, plugins=plugins, settings=settings, scheduler="ddim", steps=3, **kwargs)


def test_folders_load_with_shapes_dtypes_and_one_shared_unet(sd_folders, plugins, one_thread):
    models = [load_model(sd_folders / name, plugins) for name in ("prior", "prompt", "sketch", "segmentation")]
    assert {m.denoiser.sample_size for m in models} == {SAMPLE} and {m.denoiser.image_channels for m in models} == {4}
    assert len({id(m.denoiser.backbone) for m in models}) == 1  # one UNet, one text encoder
    assert len({m.signature().space for m in models}) == 1 and models[0].signature().space.startswith("latent:")
    assert [m.modality for m in models] == [None, "prompt", "sketch", "segmentation"]
    assert models[2].denoiser.condition_size == "image" and models[1].denoiser.condition_size == "sample"
    x, t = torch.randn(2, 4, SAMPLE, SAMPLE), torch.tensor(500)
    assert models[0].denoiser(x, t, None).shape == (2, 4, SAMPLE, SAMPLE)
    assert all(not f.is_symlink() for f in (sd_folders / "prompt").iterdir() if f.is_dir())  # real folders of links


def test_bf16_weights_decode_in_their_dtype(sd_folders, plugins, tmp_path, one_thread):
    folder = write_model_folder(tmp_path / "bf16", sd_folders / "pipeline", dtype="bf16", checksums=False)
    prior = load_model(folder, plugins)
    assert prior.denoiser.backbone.unet.dtype == torch.bfloat16
    c = Composer(prior, {}, plugins=plugins, scheduler="ddim", steps=2)
    assert next(c.latent.vae.parameters()).dtype == torch.bfloat16
    images = c.generate_tensor({}, num_images=1, progress=False)
    assert images.dtype == torch.float32 and images.shape == (1, 3, IMAGE, IMAGE) and torch.isfinite(images).all()


def test_batched_call_gives_the_separate_calls_eps(sd_folders, plugins, one_thread):
    settings = {"prompt": ModalityConfig(path="", baseline=Baseline.OWN), "sketch": ModalityConfig(path="", weight=0.7)}
    c = composer(sd_folders, plugins, settings=settings)
    conditions = {"prompt": "a red cat", "sketch": sketch_image(), "segmentation": half_known_mask()}
    batched = c.predictor(conditions, num_images=2)
    assert isinstance(batched, GroupedEps)
    separate = ComposedEps(batched.prior, batched.terms, batch_size=2)
    x = torch.randn(2, 4, SAMPLE, SAMPLE, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        for t in (torch.tensor(999), torch.tensor(301)):
            assert torch.allclose(batched(x, t), separate(x, t), atol=1e-5, rtol=1e-4)


def test_large_latents_decode_in_tiles_and_small_ones_whole(sd_folders, one_thread):
    space = load_vae(sd_folders / "pipeline" / "vae")
    vae, factor = space.vae, space.vae.config.scaling_factor
    large = torch.randn(1, 4, 2 * SAMPLE + 4, 2 * SAMPLE + 4, generator=torch.Generator().manual_seed(3))
    small = large[..., :SAMPLE, :SAMPLE]
    with torch.inference_mode():
        tiled = space.decode(large)  # 72 pixels a side: above twice the VAE's 32
        assert tiled.shape[-1] == 2 * IMAGE + 8 and torch.allclose(tiled, vae.tiled_decode(large / factor).sample)
        whole = space.decode(small)  # leaves tiling off: vae.decode below decodes whole images
        assert torch.allclose(whole, vae.decode(small / factor).sample)
        assert not torch.allclose(tiled, vae.decode(large / factor).sample, atol=1e-3)  # the tiles show


def test_latent_weight_map_is_area_pooled_pixel_weights(sd_folders, plugins):
    c = composer(sd_folders, plugins, names=("segmentation",))
    mask = half_known_mask()
    mask[:3, IMAGE // 2: IMAGE // 2 + 5] = 1  # a ragged edge: pooled cells hold fractions
    term = c.predictor({"segmentation": mask}).terms[0]
    condition = c.prepare({"segmentation": mask})["segmentation"]
    pixels = c.modalities["segmentation"].weight_map(condition)
    assert condition.shape[-1] == IMAGE and term.weight.shape[-1] == SAMPLE
    expected = torch.nn.functional.avg_pool2d(pixels[None, None], 2)
    assert torch.equal(term.weight, expected) and term.weight.unique().numel() > 2  # 0, 1 and fractions


def test_region_masked_controlnet_changes_the_image_only_inside_its_region(sd_folders, plugins, one_thread):
    """A segmentation ControlNet known on the left half: against the prior alone, the decoded image changes on
    the left, and on the right far less than the same ControlNet unmasked changes it. One sampling step, so the
    latents differ only where the composed eps does; what reaches the right half is the VAE decoder's doing
    (its convolutions near the edge, its group norms everywhere). Over several steps the UNet, which sees the whole
    image, carries the region's change to the rest of the picture, as any coherent image must."""
    def run(conditions, weight_map=True):
        settings = {"segmentation": ModalityConfig(path="", weight=3.0, weight_map=weight_map)}
        c = composer(sd_folders, plugins, names=("segmentation",), settings=settings)
        latents = []
        image = c.generate_tensor(conditions, num_images=1, seed=4, steps=1, progress=False,
                                  callback=lambda i, t, x: latents.append(x.clone()))[0]
        return latents[-1][0], image

    prior_latent, prior_only = run({})
    masked_latent, masked = run({"segmentation": half_known_mask()})
    unmasked_latent, unmasked = run({"segmentation": half_known_mask()}, weight_map=False)
    half = SAMPLE // 2  # the prior alone runs a batch of one, the composition a batch of two: equal to float tolerance
    assert torch.allclose(masked_latent[..., half:], prior_latent[..., half:], atol=1e-5)
    assert (masked_latent[..., :half] - prior_latent[..., :half]).abs().max() > 1e-2
    assert (unmasked_latent[..., half:] - prior_latent[..., half:]).abs().max() > 1e-2
    left, right = slice(0, IMAGE // 2 - 4), slice(IMAGE // 2 + 4, IMAGE)  # 4 pixels of margin: the decoder's reach
    inside = (masked - prior_only)[..., left].abs().mean()
    outside = (masked - prior_only)[..., right].abs().mean()
    unmasked_outside = (unmasked - prior_only)[..., right].abs().mean()
    assert inside > 5 * outside and unmasked_outside > 5 * outside, (inside, outside, unmasked_outside)


def test_masked_eps_equals_the_prior_outside_the_region(sd_folders, plugins, one_thread):
    c = composer(sd_folders, plugins, names=("segmentation",))
    predictor = c.predictor({"segmentation": half_known_mask()})
    x = torch.randn(1, 4, SAMPLE, SAMPLE, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        eps, eps_u = predictor(x, torch.tensor(700)), predictor.prior(x, torch.tensor(700), None)
    # weight 0 outside: eps* is eps_u there (to the float tolerance of a batch of two against a batch of one)
    assert torch.allclose(eps[..., SAMPLE // 2:], eps_u[..., SAMPLE // 2:], atol=1e-5)
    assert (eps[..., : SAMPLE // 2] - eps_u[..., : SAMPLE // 2]).abs().max() > 1e-2


def test_pixel_and_latent_models_do_not_compose(sd_folders, plugins):
    sd = load_model(sd_folders / "prior", plugins, name="sd/prior")
    pixel = load_model(SHIPPED_SKETCH, plugins, name="synthfaces/sketch")
    with pytest.raises(IncompatibleModelsError, match=r"'sd/prior' and 'synthfaces/sketch': .*latent:\w+ vs pixel"):
        Composer(sd, {"sketch": pixel}, plugins=plugins)


def test_two_vaes_and_two_schedules_do_not_compose(sd_folders, plugins, tmp_path):
    other = write_pipeline(tmp_path / "other", vae_seed=9)
    sd = load_model(sd_folders / "prior", plugins, name="sd/prior")
    theirs = load_model(write_model_folder(tmp_path / "theirs", other, modality="prompt", checksums=False), plugins,
                        name="other/prompt")
    with pytest.raises(IncompatibleModelsError, match=r"'sd/prior' and 'other/prompt': space differs \(latent:"):
        Composer(sd, {"prompt": theirs}, plugins=plugins)
    with pytest.raises(IncompatibleModelsError, match=r"VAE '.*other/vae' and 'sd/prior': different VAEs"):
        Composer(sd, {}, plugins=plugins, vae=load_vae(other / "vae"))
    shifted = write_pipeline(tmp_path / "shifted", schedule={**SD_SCHEDULE, "beta_end": 0.02})
    later = load_model(write_model_folder(tmp_path / "later", shifted, modality="prompt", checksums=False), plugins,
                       name="shifted/prompt")
    with pytest.raises(IncompatibleModelsError, match="'sd/prior' and 'shifted/prompt': .*differ"):
        Composer(sd, {"prompt": later}, plugins=plugins)


def test_pickles_are_never_linked_nor_loaded(sd_folders, plugins, tmp_path):
    pipeline = tmp_path / "pipeline"
    shutil.copytree(sd_folders / "pipeline", pipeline)
    (pipeline / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    folder = write_model_folder(tmp_path / "linked", pipeline, checksums=False)
    assert not (folder / "unet" / "diffusion_pytorch_model.bin").exists()
    (folder / "text_encoder" / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(CheckpointError, match="pickle-format"):
        load_model(folder, plugins)


def test_prompt_modality_round_trips_and_refuses_what_is_no_prompt():
    modality = PromptModality()
    condition = modality.prepare("  ein rotes Kätzchen ", size=64)
    assert condition.dtype == torch.uint8 and decode_prompt(condition) == "ein rotes Kätzchen"
    assert decode_prompt(modality.null_condition(condition)) == ""
    with pytest.raises(ConditionError, match="expected a string"):
        modality.prepare(3, size=64)
    with pytest.raises(ConditionError, match="at most 1024"):
        modality.prepare("x" * 2000, size=64)


def test_a_composition_file_generates_from_the_command_line(sd_folders, tmp_path):
    config = {"name": "tiny-sd", "prior": str(sd_folders / "prior"), "scheduler": "ddim", "steps": 2,
              "vae": str(sd_folders / "pipeline" / "vae"),
              "modalities": {name: {"path": str(sd_folders / name)} for name in ("prompt", "sketch", "segmentation")}}
    (tmp_path / "composition.yaml").write_text(yaml.safe_dump(config))
    Image.fromarray(sketch_image()).save(tmp_path / "sketch.png")
    out = tmp_path / "out.png"
    result = CliRunner().invoke(cli, ["generate", "--model", str(tmp_path), "--cond", "prompt=a red cat",
                                      "--cond", f"sketch={tmp_path / 'sketch.png'}", "--num-images", "1",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(out)).shape == (IMAGE, IMAGE, 3)
    assert json.loads((sd_folders / "sketch" / "mcdm.json").read_text())["denoiser"] == "sd_controlnet"


def test_the_example_composition_file_generates_with_folders_written_as_the_readme_says(sd_folders, tmp_path):
    """examples/compositions/sd15-controlnet.yaml over tiny folders written by the README's import commands."""
    from mcdm_diffusers.folders import main as import_main

    root = tmp_path / "sd15"
    root.mkdir()
    shutil.copy(Path(__file__).resolve().parents[3] / "examples" / "compositions" / "sd15-controlnet.yaml",
                root / "composition.yaml")
    pipeline = ["--pipeline", str(sd_folders / "pipeline")]
    for args in (["prior"], ["prompt", "--modality", "prompt"],
                 ["sketch", "--modality", "sketch", "--controlnet", str(sd_folders / "controlnet-scribble")],
                 ["segmentation", "--modality", "segmentation", "--control", "palette",
                  "--controlnet", str(sd_folders / "controlnet-seg")]):
        result = CliRunner().invoke(import_main, [str(root / args[0]), *pipeline, *args[1:]])
        assert result.exit_code == 0, result.output
    Image.fromarray(sketch_image()).save(tmp_path / "sketch.png")
    Image.fromarray(half_known_mask()[..., 0]).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    result = CliRunner().invoke(cli, ["generate", "--model", str(root), "--steps", "2", "--cond", "prompt=a red cat",
                                      "--cond", f"sketch={tmp_path / 'sketch.png'}",
                                      "--cond", f"segmentation={tmp_path / 'mask.png'}", "--num-images", "1",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(out)).shape == (IMAGE, IMAGE, 3)


def test_batched_parts_are_the_separate_calls_parts(sd_folders, plugins, one_thread):
    settings = {"prompt": ModalityConfig(path="", baseline=Baseline.OWN), "sketch": ModalityConfig(path="", weight=0.7)}
    c = composer(sd_folders, plugins, names=("prompt", "sketch"), settings=settings)
    batched = c.predictor({"prompt": "a red cat", "sketch": sketch_image()}, num_images=2)
    separate = ComposedEps(batched.prior, batched.terms, batch_size=2)
    x = torch.randn(2, 4, SAMPLE, SAMPLE, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        got, want = batched.parts(x, torch.tensor(501)), separate.parts(x, torch.tensor(501))
    assert got.weights == want.weights and got.prior_weights == want.prior_weights
    assert [b is None for b in got.baselines] == [False, True]
    for a, b in zip(got.predictions(), want.predictions(), strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("method", ["method.particles=2", "method.combiner=balanced", "method.combiner=or",
                                    "method.corrector=mala"])
def test_every_method_runs_through_batched_calls(sd_folders, plugins, one_thread, method):
    from mcdm.config import CompositionConfig, load_config
    from mcdm.methods import Trace

    config = load_config(CompositionConfig, overrides=["prior=x", method])
    mala = config.method.corrector.value == "mala"
    c = composer(sd_folders, plugins, names=("prompt", "sketch"), method=config.method,
                 corrector_steps=1 if mala else 0)
    conditions = {"prompt": "a red cat", "sketch": sketch_image()}
    trace = Trace()
    run = dict(num_images=2, steps=2, scheduler="ddpm", progress=False)
    images = c.generate_tensor(conditions, seed=3, trace=trace, **run)
    assert images.shape == (2, 3, IMAGE, IMAGE) and torch.isfinite(images).all()
    assert torch.equal(images, c.generate_tensor(conditions, seed=3, **run))
    assert len(trace.ess) == (1 if config.method.particles > 1 else 0) and len(trace.acceptance) == (1 if mala else 0)


def test_a_method_refuses_a_latent_weight_map_in_one_line(sd_folders, plugins, one_thread):
    from mcdm.errors import MethodError
    from mcdm.methods import MethodConfig

    c = composer(sd_folders, plugins, names=("segmentation",), method=MethodConfig(particles=2))
    with pytest.raises(MethodError, match="'segmentation' has a per-pixel weight map"):
        c.generate_tensor({"segmentation": half_known_mask()}, steps=2, scheduler="ddpm", progress=False)
