"""Every scheduler, driven by mcdm's loop, samples the right distribution from an exact eps-predictor.

For data x0 ~ N(mu, s^2) the optimal noise prediction is closed-form: with x_t = a x0 + b eps,
E[eps | x_t] = b (x_t - a mu) / (a^2 s^2 + b^2). Samples drawn through the Composer must have mean mu
and standard deviation s, whichever scheduler runs the loop.
"""

import pytest
import torch

from conftest import ddpm_schedule
from toy_experts import AnalyticDenoiser
from mcdm.checkpoint import LoadedModel
from mcdm.compose import Composer
from mcdm.sampling import sample
from mcdm.schedule import Prediction, alphas_cumprod, make_scheduler

MU, S = 0.1, 0.4  # an image-like spread: a sharp Gaussian loses variance in the last, large step


class GaussianOracle(AnalyticDenoiser):
    type_name = "gaussian-oracle"

    def __init__(self, schedule: dict):
        super().__init__()
        self.sample_size, self.image_channels = 8, 3
        self.register_buffer("abar", alphas_cumprod(schedule).float())

    def forward(self, x_t, t, cond):
        t = torch.as_tensor(t, dtype=torch.float32).clamp(0, len(self.abar) - 1)
        lo = t.floor().long()
        hi = (lo + 1).clamp(max=len(self.abar) - 1)
        abar = self.abar[lo] + (self.abar[hi] - self.abar[lo]) * (t - lo)  # fractional t (Euler)
        a, b = abar.sqrt(), (1 - abar).sqrt()
        return b * (x_t - a * MU) / (a**2 * S**2 + b**2)


@pytest.mark.parametrize("scheduler, steps", [("ddpm", 50), ("ddim", 25), ("dpm++", 20), ("euler", 30),
                                             ("ddpm", 1000)])
def test_schedulers_sample_the_data_distribution(plugins, scheduler, steps):
    schedule = ddpm_schedule()
    oracle = LoadedModel(name="oracle", denoiser=GaussianOracle(schedule), modality=None,
                         prediction=Prediction.EPSILON, schedule_config=schedule)
    composer = Composer(oracle, {}, plugins=plugins)
    # the loop itself (generate_tensor would also clamp to [-1, 1], which cuts the Gaussian's tails)
    x = sample(composer.predictor({}, num_images=64), make_scheduler(scheduler, schedule), shape=(64, 3, 8, 8),
               steps=steps, generator=torch.Generator().manual_seed(0), progress=False)
    assert abs(x.mean().item() - MU) < 0.03
    # the last step jumps from t ~ T/steps straight to x0, which shrinks the spread a little at few steps
    assert abs(x.std().item() - S) / S < 0.15


def test_langevin_corrector_keeps_the_data_distribution(plugins):
    schedule = ddpm_schedule()
    oracle = LoadedModel(name="oracle", denoiser=GaussianOracle(schedule), modality=None,
                         prediction=Prediction.EPSILON, schedule_config=schedule)
    predictor = Composer(oracle, {}, plugins=plugins).predictor({}, num_images=64)
    run = dict(shape=(64, 3, 8, 8), steps=50, progress=False)
    plain = sample(predictor, make_scheduler("ddpm", schedule), generator=torch.Generator().manual_seed(0), **run)
    corrected = sample(predictor, make_scheduler("ddpm", schedule), generator=torch.Generator().manual_seed(0),
                       corrector_steps=2, corrector_size=0.1, **run)
    assert not torch.allclose(plain, corrected)
    assert abs(corrected.mean().item() - MU) < 0.03
    assert abs(corrected.std().item() - S) / S < 0.15


def test_langevin_steps_converge_to_the_noisy_marginal(plugins):
    """Started far off (x = 3), ULA on the exact score of p_t reaches p_t = N(a mu, a^2 s^2 + b^2)."""
    from mcdm.sampling import langevin_correct

    schedule = ddpm_schedule()
    oracle = GaussianOracle(schedule)
    t = 300
    abar = float(oracle.abar[t])
    x = torch.full((256, 3, 8, 8), 3.0)
    x = langevin_correct(lambda x, t: oracle(x, t, None), x, torch.tensor(t), abar, steps=200, size=0.1,
                         generator=torch.Generator().manual_seed(0))
    a, b = abar**0.5, (1 - abar) ** 0.5
    assert abs(x.mean().item() - a * MU) < 0.02
    assert abs(x.std().item() - (a**2 * S**2 + b**2) ** 0.5) < 0.03


def test_corrector_needs_an_unscaled_sampler_state(plugins):
    schedule = ddpm_schedule()
    oracle = LoadedModel(name="oracle", denoiser=GaussianOracle(schedule), modality=None,
                         prediction=Prediction.EPSILON, schedule_config=schedule)
    predictor = Composer(oracle, {}, plugins=plugins).predictor({}, num_images=2)
    with pytest.raises(ValueError, match="rescaled state"):
        sample(predictor, make_scheduler("euler", schedule), shape=(2, 3, 8, 8), steps=5,
               generator=torch.Generator().manual_seed(0), progress=False, corrector_steps=1)


@pytest.mark.parametrize("scheduler, steps", [("ddpm", 7), ("ddim", 25), ("dpm++", 10)])
def test_corrector_runs_at_the_noise_level_each_step_lands_on(plugins, monkeypatch, scheduler, steps):
    import mcdm.sampling

    schedule = ddpm_schedule()
    oracle = LoadedModel(name="oracle", denoiser=GaussianOracle(schedule), modality=None,
                         prediction=Prediction.EPSILON, schedule_config=schedule)
    predictor = Composer(oracle, {}, plugins=plugins).predictor({}, num_images=1)
    seen = []

    def record(predictor, x, t, alpha_cumprod, **kwargs):
        seen.append((int(t), alpha_cumprod))
        return x

    monkeypatch.setattr(mcdm.sampling, "langevin_correct", record)
    sched = make_scheduler(scheduler, schedule)
    sample(predictor, sched, shape=(1, 3, 8, 8), steps=steps, generator=torch.Generator().manual_seed(0),
           progress=False, corrector_steps=1)
    abar = alphas_cumprod(schedule)
    expected = [int(t) for t in sched.timesteps[1:]]
    assert [t for t, _ in seen] == expected and len(expected) == steps - 1
    assert all(a == pytest.approx(float(abar[t])) for t, a in seen)
