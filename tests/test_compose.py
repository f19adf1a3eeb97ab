"""Composer end to end on tiny random models: every modality speaks, seeds reproduce, bad input is refused."""

import json

import numpy as np
import pytest
import torch

from conftest import SIZE, ddpm_schedule
from mcdm.checkpoint import load_model
from mcdm.combine import Baseline
from mcdm.compose import Composer
from mcdm.config import ModalityConfig
from mcdm.errors import CheckpointError, ConditionError, ConfigError, IncompatibleModelsError, UnknownNameError
from mcdm.predictor import EpsModel

MAPS = {name: np.random.default_rng(i).random((SIZE, SIZE)) for i, name in enumerate(("toy_a", "toy_b", "toy_c", "toy_d"))}


def generate(composer, conditions, **kwargs):
    kwargs = {"num_images": 2, "seed": 0, "progress": False, **kwargs}
    return composer.generate_tensor(conditions, **kwargs)


def test_same_seed_same_images_and_other_seed_differs(toy_composer):
    composer = toy_composer()
    a = generate(composer, MAPS)
    assert a.shape == (2, 3, SIZE, SIZE)
    assert torch.equal(a, generate(composer, MAPS))
    assert not torch.allclose(a, generate(composer, MAPS, seed=1))


@pytest.mark.parametrize("dropped", ["toy_a", "toy_b", "toy_c", "toy_d"])
def test_every_modality_changes_the_output(toy_composer, dropped):
    composer = toy_composer()
    full = generate(composer, MAPS)
    partial = generate(composer, {k: v for k, v in MAPS.items() if k != dropped})
    assert (full - partial).abs().mean() > 1e-3
    # and the value of its condition matters, not only its presence
    other = dict(MAPS, **{dropped: 1 - MAPS[dropped]})
    assert (full - generate(composer, other)).abs().mean() > 1e-4


def test_no_conditions_samples_the_prior(toy_composer):
    composer = toy_composer()
    assert torch.isfinite(generate(composer, {})).all()


def test_composed_predictor_matches_eq12_with_real_models(toy_composer):
    composer = toy_composer()
    x = torch.randn(2, 3, SIZE, SIZE)
    t = torch.tensor(500)
    predictor = composer.predictor(MAPS, num_images=2)
    got = predictor(x, t)
    eps = [composer.models[term.name](x, t, term.condition) for term in predictor.terms]
    expected = sum(eps) - (len(eps) - 1) * composer.prior(x, t, None)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_own_baseline_batches_conditional_and_null_in_one_call(toy_composer):
    settings = {"toy_a": ModalityConfig(path="", baseline=Baseline.OWN)}
    composer = toy_composer(names=("toy_a",), settings=settings)
    x, t = torch.randn(2, 3, SIZE, SIZE), torch.tensor(300)
    predictor = composer.predictor({"toy_a": MAPS["toy_a"]}, num_images=2)
    (term,) = predictor.terms
    model = composer.models["toy_a"]
    expected = composer.prior(x, t, None) + model(x, t, term.condition) - model(x, t, term.null_condition)
    torch.testing.assert_close(predictor(x, t), expected, rtol=1e-4, atol=1e-5)


def test_time_window_switches_a_modality_off(toy_composer):
    settings = {"toy_a": ModalityConfig(path="", start=0.0, end=0.0)}  # never speaks after t = 0
    composer = toy_composer(names=("toy_a",), settings=settings)
    x, t = torch.randn(1, 3, SIZE, SIZE), torch.tensor(700)
    out = composer.predictor({"toy_a": MAPS["toy_a"]})(x, t)
    torch.testing.assert_close(out, composer.prior(x, t, None))


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim", "dpm++", "euler"])
def test_every_scheduler_runs_and_reproduces(toy_composer, scheduler):
    composer = toy_composer(names=("toy_a", "toy_b"))
    conds = {"toy_a": MAPS["toy_a"], "toy_b": MAPS["toy_b"]}
    a = generate(composer, conds, scheduler=scheduler, steps=4)
    assert torch.isfinite(a).all()
    assert torch.equal(a, generate(composer, conds, scheduler=scheduler, steps=4))


def test_weights_change_the_output_and_negation_is_accepted(toy_composer):
    composer = toy_composer(names=("toy_a",))
    conds = {"toy_a": MAPS["toy_a"]}
    base = generate(composer, conds)
    assert not torch.allclose(base, generate(composer, conds, weights={"toy_a": 3.0}))
    assert not torch.allclose(base, generate(composer, conds, weights={"toy_a": -1.0}))


def test_callback_sees_every_step(toy_composer):
    composer = toy_composer(names=("toy_a",))
    seen = []
    generate(composer, {"toy_a": MAPS["toy_a"]}, steps=5, callback=lambda i, t, x: seen.append((i, x.shape)))
    assert [i for i, _ in seen] == list(range(5))


def test_generate_returns_pil_images(toy_composer):
    images = toy_composer(names=("toy_a",)).generate({"toy_a": MAPS["toy_a"]}, num_images=3, progress=False)
    assert len(images) == 3 and images[0].size == (SIZE, SIZE) and images[0].mode == "RGB"


# --- bad input ----------------------------------------------------------------------------------


def test_unknown_modality_name(toy_composer):
    with pytest.raises(UnknownNameError, match="no model for modality 'sketchy'.*toy_a"):
        generate(toy_composer(names=("toy_a",)), {"sketchy": MAPS["toy_a"]})


def test_wrong_size_wrong_channels_and_nan_conditions(toy_composer):
    composer = toy_composer(names=("toy_a",))
    with pytest.raises(ConditionError, match="expected a 16x16 map"):
        generate(composer, {"toy_a": np.zeros((8, 8))})
    with pytest.raises(ConditionError, match="one channel"):
        generate(composer, {"toy_a": np.zeros((SIZE, SIZE, 3))})
    nan_map = MAPS["toy_a"].copy()
    nan_map[3, 3] = np.nan
    with pytest.raises(ConditionError, match="NaN"):
        generate(composer, {"toy_a": nan_map})


def test_unknown_scheduler(toy_composer):
    with pytest.raises(UnknownNameError, match="unknown scheduler 'heun2'.*ddpm"):
        generate(toy_composer(names=("toy_a",)), {}, scheduler="heun2")


def test_missing_and_weightless_checkpoint_folders(tmp_path, plugins, make_model):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nowhere", plugins)
    folder = make_model("toy_a")
    for weights in folder.rglob("*.safetensors"):
        weights.unlink()
    with pytest.raises(CheckpointError, match="no .safetensors"):
        load_model(folder, plugins)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="mcdm.json is missing"):
        load_model(tmp_path / "empty", plugins)


def test_mismatched_schedules_name_both_models(make_model, plugins):
    prior = load_model(make_model(None), plugins, name="prior")
    other = load_model(make_model("toy_a", schedule=ddpm_schedule(beta_end=0.03)), plugins, name="toy-model")
    with pytest.raises(IncompatibleModelsError, match="'prior' and 'toy-model': noise schedules differ"):
        Composer(prior, {"toy_a": other}, plugins=plugins)
    short = load_model(make_model("toy_b", schedule=ddpm_schedule(num_train_timesteps=500)), plugins, name="short")
    with pytest.raises(IncompatibleModelsError, match="num_train_timesteps differs"):
        Composer(prior, {"toy_b": short}, plugins=plugins)


def test_mismatched_sample_size(make_model, plugins):
    prior = load_model(make_model(None), plugins, name="prior")
    big = load_model(make_model("toy_a", size=32), plugins, name="big")
    with pytest.raises(IncompatibleModelsError, match="sample_size differs \\(16 vs 32\\)"):
        Composer(prior, {"toy_a": big}, plugins=plugins)


def test_model_for_another_modality_is_refused(make_model, plugins):
    from mcdm.errors import ConfigError

    prior = load_model(make_model(None), plugins)
    with pytest.raises(ConfigError, match="trained for modality 'toy_a', not 'toy_b'"):
        Composer(prior, {"toy_b": load_model(make_model("toy_a"), plugins)}, plugins=plugins)


# --- parameterisation adapters ------------------------------------------------------------------


@pytest.mark.parametrize("prediction", ["v_prediction", "sample"])
def test_v_and_x0_models_are_converted_to_eps(make_model, plugins, prediction):
    from mcdm.schedule import alphas_cumprod

    model = EpsModel(load_model(make_model("toy_a", prediction=prediction), plugins))
    x, t = torch.randn(2, 3, SIZE, SIZE), torch.tensor(400)
    cond = torch.zeros(2, 1, SIZE, SIZE)
    raw = model.denoiser(x, t, cond)
    abar = alphas_cumprod(ddpm_schedule())[400].float()
    if prediction == "v_prediction":
        expected = abar.sqrt() * raw + (1 - abar).sqrt() * x
    else:
        expected = (x - abar.sqrt() * raw) / (1 - abar).sqrt()
    torch.testing.assert_close(model(x, t, cond), expected, rtol=1e-4, atol=1e-5)


def test_a_plugin_error_on_bad_input_still_names_the_modality(toy_composer):
    with pytest.raises(ConditionError, match="toy_a: cannot use \\[\\[.not a number.\\]\\]"):
        generate(toy_composer(names=("toy_a",)), {"toy_a": [["not a number"]]})


def test_bf16_autocast_stays_close_to_fp32(toy_composer):
    fp32 = toy_composer(names=("toy_a",))
    bf16 = toy_composer(names=("toy_a",), precision="bf16")
    a = generate(fp32, {"toy_a": MAPS["toy_a"]}, steps=3)
    b = generate(bf16, {"toy_a": MAPS["toy_a"]}, steps=3)
    assert b.dtype == torch.float32 and torch.isfinite(b).all()
    assert (a - b).abs().mean() < 0.1


def test_unknown_precision_is_refused(toy_composer):
    from mcdm.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        toy_composer(names=("toy_a",), precision="fp8")


def test_per_image_conditions_match_one_request_per_image(toy_composer):
    composer = toy_composer(names=("toy_a", "toy_b"))
    requests = [{"toy_a": MAPS["toy_a"], "toy_b": MAPS["toy_b"]}, {"toy_a": MAPS["toy_c"], "toy_b": MAPS["toy_d"]}]
    x, t = torch.randn(2, 3, SIZE, SIZE), torch.tensor(600)
    together = composer.predictor(requests)(x, t)
    for i, request in enumerate(requests):
        alone = composer.predictor(request)(x[i : i + 1], t)
        torch.testing.assert_close(together[i : i + 1], alone, rtol=1e-4, atol=1e-5)
    assert generate(composer, requests, num_images=None).shape[0] == 2


def test_per_image_conditions_must_name_the_same_modalities(toy_composer):
    from mcdm.errors import ConfigError

    composer = toy_composer(names=("toy_a", "toy_b"))
    with pytest.raises(ConfigError, match="image 1 names modalities"):
        composer.predictor([{"toy_a": MAPS["toy_a"]}, {"toy_b": MAPS["toy_b"]}])


def test_a_prior_mixture_replaces_eps_u_everywhere(toy_composer):
    composer = toy_composer(names=("toy_a", "toy_b"), prior_mixture={"prior": 0.25, "toy_a": 0.75})
    x, t = torch.randn(2, 3, SIZE, SIZE), torch.tensor(400)
    conditions = {"toy_a": MAPS["toy_a"], "toy_b": MAPS["toy_b"]}
    predictor = composer.predictor(conditions, num_images=2)
    a, b = predictor.terms
    mixture = 0.25 * composer.prior(x, t, None) + 0.75 * composer.models["toy_a"](x, t, a.null_condition)
    eps_a, eps_b = composer.models["toy_a"](x, t, a.condition), composer.models["toy_b"](x, t, b.condition)
    torch.testing.assert_close(predictor(x, t), mixture + (eps_a - mixture) + (eps_b - mixture), rtol=1e-4, atol=1e-5)
    plain = toy_composer(names=("toy_a", "toy_b")).predictor(conditions, num_images=2)
    assert (plain(x, t) - predictor(x, t)).abs().max() > 1e-4


@pytest.mark.parametrize("mixture, message", [({"prior": 0.5, "toy_z": 0.5}, "prior_mixture names"),
                                              ({"prior": 0.5, "toy_a": 0.4}, "sum to 1")])
def test_a_bad_prior_mixture_is_refused(toy_composer, mixture, message):
    with pytest.raises(ConfigError, match=message):
        toy_composer(names=("toy_a",), prior_mixture=mixture)


def test_a_prior_mixture_needs_the_conditions_of_its_modalities(toy_composer):
    composer = toy_composer(names=("toy_a", "toy_b"), prior_mixture={"toy_a": 0.5, "toy_b": 0.5})
    with pytest.raises(ConfigError, match=r"own null predictions of \['toy_b'\]"):
        composer.predictor({"toy_a": MAPS["toy_a"]})


def test_an_own_baseline_reuses_the_null_prediction_the_mixture_made(toy_composer):
    settings = {"toy_a": ModalityConfig(path="", baseline=Baseline.OWN)}
    composer = toy_composer(names=("toy_a",), settings=settings, prior_mixture={"prior": 0.5, "toy_a": 0.5})
    x, t = torch.randn(2, 3, SIZE, SIZE), torch.tensor(600)
    predictor = composer.predictor({"toy_a": MAPS["toy_a"]}, num_images=2)
    (term,) = predictor.terms
    model = composer.models["toy_a"]
    own = model(x, t, term.null_condition)
    expected = 0.5 * composer.prior(x, t, None) + 0.5 * own + model(x, t, term.condition) - own
    rows = []
    term.model = lambda x_t, t, cond: rows.append(x_t.shape[0]) or model(x_t, t, cond)
    torch.testing.assert_close(predictor(x, t), expected, rtol=1e-4, atol=1e-5)
    assert rows == [2, 2]  # the null prediction once (for the mixture), then the condition: nothing computed twice


@pytest.mark.parametrize(
    "options, message",
    [
        ({"steps": 0}, "steps must be an integer of at least 1, got 0"),  # was silently replaced by the default
        ({"steps": 2.5}, "steps must be an integer"),
        ({"steps": True}, "steps must be an integer"),
        ({"num_images": "3"}, "num_images must be an integer"),
        ({"num_images": 0}, "num_images must be an integer of at least 1"),
        ({"seed": 2**32}, "seed must be in [0, 2**32 - 1]"),
        ({"seed": -1}, "seed must be in [0, 2**32 - 1]"),
        ({"seed": 1.0}, "seed must be an integer"),
    ],
)
def test_bad_sampling_arguments_are_config_errors(toy_composer, options, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("*", r"\*")):
        generate(toy_composer(("toy_a",)), {"toy_a": MAPS["toy_a"]}, **options)


def test_seeds_that_share_their_low_32_bits_cannot_collide(toy_composer):
    """torch's CPU generator keeps 32 bits of a seed: 2**32 would have drawn the images of seed 0, so it is refused."""
    composer = toy_composer(("toy_a",))
    assert torch.Generator().manual_seed(2**32).initial_seed() == 2**32  # torch takes it...
    assert torch.equal(torch.randn(4, generator=torch.Generator().manual_seed(2**32)),
                       torch.randn(4, generator=torch.Generator().manual_seed(0)))  # ...and draws seed 0's stream
    top = generate(composer, {"toy_a": MAPS["toy_a"]}, seed=2**32 - 1)
    assert not torch.allclose(top, generate(composer, {"toy_a": MAPS["toy_a"]}, seed=0))
    with pytest.raises(ConfigError, match="seed must be in"):
        generate(composer, {"toy_a": MAPS["toy_a"]}, seed=2**32)
