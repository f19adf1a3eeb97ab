"""The composition methods' pieces against their closed forms, and the settings that choose them or refuse them."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import SIZE, ddpm_schedule
from mcdm.combine import Baseline, Parts, balanced_weights, combine, sum_coefficients
from mcdm.config import CompositionConfig, ModalityConfig, load_config
from mcdm.errors import MethodError
from mcdm.methods import Combiner, Corrector, MethodConfig, PriorMixing, TermFacts, Trace, check_method
from mcdm.particles import centre_and_clamp, ess_fraction, fk_increment, pick_one, systematic_resample
from mcdm.sde import Step, StepVariance

MAPS = {name: np.random.default_rng(i).random((SIZE, SIZE)) for i, name in enumerate(("toy_a", "toy_b"))}


def predictions(n, seed=0, shape=(3, 2, 4, 4)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), [torch.randn(shape, generator=g) for _ in range(n)]


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.5, -0.5, 2.0), (0.3,)])
def test_fk_increment_is_the_weighted_composition_formula(weights):
    """-(beta / 2 sigma^2) sum_j c_j ||eps_j - eps*||^2 == (g^2 dt / 2)(||sum w_i d_i||^2 - sum w_i ||d_i||^2)."""
    eps_u, eps = predictions(len(weights))
    parts = Parts((eps_u,), (1.0,), tuple(eps), (None,) * len(eps), weights)
    star = combine(eps_u, eps, list(weights))
    beta, sigma = 0.02, 0.7
    ours = fk_increment(star, parts.predictions(), sum_coefficients(parts), beta, sigma)
    d = [-(e - eps_u) / sigma for e in eps]  # d_i = s_i - s_u
    combined = sum(w * di for w, di in zip(weights, d))
    issue = beta / 2 * (combined.pow(2).sum((1, 2, 3)) - sum(w * di.pow(2).sum((1, 2, 3)) for w, di in zip(weights, d)))
    torch.testing.assert_close(ours, issue.double(), rtol=1e-5, atol=1e-6)


def test_fk_increment_of_one_guided_model_is_the_official_cfg_weight():
    """FKC's classifier-free guidance case: dlogw = w (w - 1) ||s_c - s_u||^2 g^2 dt / 2 (their EDM code's d_a)."""
    eps_u, (eps_c,) = predictions(1)
    w, beta, sigma = 3.0, 0.01, 0.5
    parts = Parts((eps_u,), (1.0,), (eps_c,), (None,), (w,))
    ours = fk_increment(combine(eps_u, [eps_c], [w]), parts.predictions(), sum_coefficients(parts), beta, sigma)
    norm = ((eps_c - eps_u) / sigma).pow(2).sum((1, 2, 3))
    torch.testing.assert_close(ours, (w * (w - 1) * norm * beta / 2).double(), rtol=1e-5, atol=1e-6)


def test_sum_coefficients_reproduce_the_combiner_with_own_baselines_and_a_prior_mixture():
    (p1, p2), (e1, e2, own) = predictions(2, seed=1)[1], predictions(3, seed=2)[1]
    parts = Parts((p1, p2), (0.25, 0.75), (e1, e2), (None, own), (1.5, -0.5))
    c = sum_coefficients(parts)
    torch.testing.assert_close(sum(c), torch.ones(3))
    rebuilt = sum(ci.view(-1, 1, 1, 1) * e for ci, e in zip(c, parts.predictions()))
    eps_u = 0.25 * p1 + 0.75 * p2
    torch.testing.assert_close(rebuilt, combine(eps_u, [e1, e2], [1.5, -0.5], [None, own]), rtol=1e-5, atol=1e-5)


def test_systematic_resampling_stays_in_each_group_and_follows_the_weights():
    logw = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, -50.0, -50.0, -50.0], [0.0, 0.0, -50.0, -50.0]])
    chosen = systematic_resample(logw, torch.Generator().manual_seed(0)).view(3, 4)
    assert sorted(chosen[0].tolist()) == [0, 1, 2, 3]  # equal weights: every particle once
    assert chosen[1].tolist() == [4, 4, 4, 4]
    assert sorted(chosen[2].tolist()) == [8, 8, 9, 9]
    assert pick_one(logw, torch.Generator().manual_seed(0))[1] == 4
    torch.testing.assert_close(ess_fraction(logw), torch.tensor([1.0, 0.25, 0.5], dtype=torch.float32))
    torch.testing.assert_close(centre_and_clamp(torch.tensor([[0.0, 4.0]]), 1.0), torch.tensor([[-1.0, 1.0]]))


def test_balanced_weights_solve_the_system_and_fall_back_where_predictions_coincide():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 3, 5, generator=g)
    gram = a @ a.transpose(1, 2)  # positive definite: three distinct predictions
    wanted = torch.tensor([1.2, 0.8, 1.0]).expand(4, 3)  # every log-density ratio reaches 0.5 with these
    predicted = 0.5 - (gram @ wanted[..., None])[..., 0]
    total = torch.full((4,), 3.0)
    fallback = torch.ones(4, 3)
    kappa = balanced_weights(predicted, gram, total, fallback, ridge=0.0)
    torch.testing.assert_close(kappa, wanted, atol=1e-4, rtol=0)
    assert torch.equal(balanced_weights(predicted, torch.zeros(4, 3, 3), total, fallback), fallback)


@pytest.mark.parametrize("variance, variance_type", [(StepVariance.POSTERIOR, "fixed_small"),
                                                     (StepVariance.FORWARD, "fixed_large")])
def test_the_written_out_step_is_ddpm_with_its_variance_and_no_clipping(variance, variance_type):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_config(ddpm_schedule(variance_type=variance_type, clip_sample=False))
    scheduler.set_timesteps(10)
    x, eps = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    t = scheduler.timesteps[3]
    ref = scheduler.step(eps, t, x, generator=torch.Generator().manual_seed(5)).prev_sample
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    abar, abar_prev = (float(scheduler.alphas_cumprod[int(s)]) for s in (t, scheduler.previous_timestep(t)))
    torch.testing.assert_close(Step(x, abar, abar_prev, noise, variance).move(eps), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fields, message", [({"particles": 0}, "at least 1"),
                                             ({"particles_start": 0.8, "particles_end": 0.2}, "active interval"),
                                             ({"ess_threshold": 0.0}, "ess_threshold"),
                                             ({"temperature": -1.0}, "temperature"),
                                             ({"temperature": float("nan")}, "temperature"),
                                             ({"temperature": float("inf")}, "temperature"),
                                             ({"weight_clamp": float("nan")}, "weight_clamp"),
                                             ({"ess_threshold": float("nan")}, "ess_threshold")])
def test_bad_method_settings(fields, message):
    with pytest.raises(MethodError, match=message):
        MethodConfig(**fields)


def facts(name="a", weight=1.0, varies=False, window=(0.0, 1.0)):
    return TermFacts(name, weight, weight, varies, window)


@pytest.mark.parametrize("method, terms, corrector_steps, message", [
    (MethodConfig(particles=2), [facts(varies=True)], 0, "per-pixel weight map"),
    (MethodConfig(corrector=Corrector.MALA), [facts(varies=True)], 1, "per-pixel weight map"),
    (MethodConfig(particles=2), [facts(window=(0.2, 1.0))], 0, "must lie inside every window"),
    (MethodConfig(combiner=Combiner.BALANCED), [facts(window=(0.0, 0.5))], 0, "only speaks in"),
    (MethodConfig(combiner=Combiner.BALANCED), [facts(), facts("b", weight=-1.0)], 0, "weights > 0"),
    (MethodConfig(combiner=Combiner.OR), [facts()], 1, "corrector steps"),
    (MethodConfig(combiner=Combiner.OR, particles=2), [facts()], 0, "particles reweight"),
])
def test_what_the_mathematics_rules_out_is_refused_in_one_line(method, terms, corrector_steps, message):
    with pytest.raises(MethodError, match=message) as info:
        check_method(method, terms, corrector_steps=corrector_steps, prior_mixture=False)
    assert "\n" not in str(info.value)


def test_what_it_allows_passes():
    check_method(MethodConfig(particles=4, particles_start=0.3), [facts(window=(0.2, 1.0)), facts("b", -0.5)],
                 corrector_steps=2, prior_mixture=False)
    check_method(MethodConfig(corrector=Corrector.MALA), [facts(window=(0.0, 0.5))], corrector_steps=1,
                 prior_mixture=False)
    check_method(MethodConfig(prior_mixing=PriorMixing.OR), [facts(weight=0.0)], corrector_steps=0,
                 prior_mixture=True)
    with pytest.raises(MethodError, match="has none"):
        check_method(MethodConfig(prior_mixing=PriorMixing.OR), [], corrector_steps=0, prior_mixture=False)


def test_methods_are_composition_settings():
    config = load_config(CompositionConfig, overrides=["prior=p", "method.particles=4", "method.combiner=balanced",
                                                       "method.corrector=mala", "method.sde_variance=forward"])
    assert config.method == MethodConfig(particles=4, combiner=Combiner.BALANCED, corrector=Corrector.MALA,
                                         sde_variance=StepVariance.FORWARD)
    with pytest.raises(Exception, match="invalid configuration"):
        load_config(CompositionConfig, overrides=["prior=p", "method.combiner=xor"])


@pytest.mark.parametrize("method", [MethodConfig(particles=3), MethodConfig(combiner=Combiner.BALANCED),
                                    MethodConfig(combiner=Combiner.OR), MethodConfig(corrector=Corrector.MALA)])
def test_every_method_runs_through_the_composer_and_reproduces(toy_composer, method):
    composer = toy_composer(names=("toy_a", "toy_b"), scheduler="ddpm")
    conditions = {"toy_a": MAPS["toy_a"], "toy_b": MAPS["toy_b"]}
    trace = Trace()
    run = dict(num_images=2, steps=3, progress=False, method=method,
               corrector_steps=1 if method.corrector is Corrector.MALA else 0)
    first = composer.generate_tensor(conditions, seed=1, trace=trace, **run)
    assert first.shape == (2, 3, SIZE, SIZE)
    assert torch.equal(first, composer.generate_tensor(conditions, seed=1, **run))
    assert not torch.equal(first, composer.generate_tensor(conditions, seed=1, num_images=2, steps=3, progress=False))
    if method.particles > 1:
        assert len(trace.ess) == 2 and trace.resamplings == 2
    if method.corrector is Corrector.MALA:
        assert len(trace.acceptance) == 2 and all(0.0 <= a <= 1.0 for a in trace.acceptance)


def test_particles_make_no_extra_network_calls(toy_composer):
    composer = toy_composer(names=("toy_a",), scheduler="ddpm")
    calls = []
    for model in (composer.prior, *composer.models.values()):
        model.denoiser.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    composer.generate_tensor({"toy_a": MAPS["toy_a"]}, num_images=2, steps=3, progress=False,
                             method=MethodConfig(particles=4))
    assert calls == [8] * 6  # prior and one modality, 2 images x 4 particles, 3 steps


def test_a_window_or_an_ode_sampler_is_refused_by_the_composer(toy_composer):
    settings = {"toy_a": ModalityConfig(path="", start=0.5)}
    composer = toy_composer(names=("toy_a",), settings=settings, scheduler="ddpm")
    with pytest.raises(MethodError, match="'toy_a' speaks in"):
        composer.generate_tensor({"toy_a": MAPS["toy_a"]}, steps=2, progress=False, method=MethodConfig(particles=2))
    with pytest.raises(MethodError, match="needs the ddpm sampler"):
        toy_composer(names=("toy_a",)).generate_tensor({"toy_a": MAPS["toy_a"]}, steps=2, progress=False,
                                                       scheduler="dpm++", method=MethodConfig(particles=2))


def test_the_cli_takes_a_method_and_refuses_an_ode_sampler_in_one_line(tmp_path, make_model):
    import yaml
    from PIL import Image

    from mcdm.cli import cli

    make_model(None, name="prior")
    make_model("toy_a", seed=1, name="toy_a")
    config = {"name": "toy", "prior": "prior", "steps": 2, "scheduler": "ddpm",
              "modalities": {"toy_a": {"path": "toy_a"}}}
    (tmp_path / "composition.yaml").write_text(yaml.safe_dump(config))
    Image.fromarray((MAPS["toy_a"] * 255).astype(np.uint8)).save(tmp_path / "map.png")
    args = ["generate", "--model", str(tmp_path), "--cond", f"toy_a={tmp_path / 'map.png'}", "--num-images", "1"]
    ok = CliRunner().invoke(cli, [*args, "--set", "method.particles=2", "--out", str(tmp_path / "a.png")])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(cli, [*args, "--set", "method.particles=2", "--scheduler", "dpm++",
                                   "--out", str(tmp_path / "b.png")])
    assert bad.exit_code != 0 and "needs the ddpm sampler" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "b.png").exists()
