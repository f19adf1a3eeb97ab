"""Each composition method against the exact target, on experts whose noised scores are analytic.

The experts (tests/toy_experts.py) are Gaussians and Gaussian mixtures in 1-D and 2-D with exact eps-predictors at
every t, composed through mcdm's own ComposedEps and loop on DDPM's schedule. The naive sum's reverse diffusion
does not sample the product of its experts (a sum of noised scores is not the noised product's score), so every
test shows that bias and a method that is closer, from one seed.
"""

import pytest
import torch

from conftest import ddpm_schedule
from mcdm.combine import Baseline
from mcdm.methods import Combiner, Corrector, MethodConfig, PriorMixing, Trace
from mcdm.predictor import ComposedEps, Term
from mcdm.sampling import langevin_correct, mala_correct, sample
from mcdm.schedule import alphas_cumprod, make_scheduler
from mcdm.sde import Step, StepVariance, ito_increment
from toy_experts import Mixture, grid_target, gaussian_w2, ks_distance, oracle_model

SCHEDULE = ddpm_schedule(clip_sample=False)  # the naive DDPM rows must not clip the experts' tails either
IMAGES, STEPS = 4000, 100
PRIOR = Mixture.gaussian(0.0, 1.0)
# a bimodal expert and a Gaussian one: their product keeps the mode at +1 (the exact target has 5% below 0)
BIMODAL = Mixture((0.5, 0.5), ((-1.0,), (1.0,)), ((0.25,), (0.25,)))
RIGHT = Mixture.gaussian(0.6, 0.6)
WIDE_PRIOR = Mixture.gaussian(0.0, 1.5)
# two Gaussians of different widths: the product is narrower than the naive sum gives
LEFT_NARROW, RIGHT_WIDE = Mixture.gaussian(-0.5, 0.3), Mixture.gaussian(0.5, 0.4)
EITHER_VARIANCE = pytest.mark.parametrize("variance", list(StepVariance))  # the stochastic step's two noises
# how much closer than the sum particles come at 100 steps: the posterior variance's step is further from the
# continuous-time weights' SDE on a coarse grid (at 1,000 steps the two agree; docs/method.md)
CLOSER = {StepVariance.FORWARD: 0.5, StepVariance.POSTERIOR: 0.7}


def composed(experts, prior=PRIOR, *, weights=None, particles=1, baselines=None, mixture=None, nulls=None):
    """ComposedEps over oracle experts (condition 1: the expert, 0: its own null ``nulls[i]``)."""
    size = IMAGES * particles
    cond, null = torch.ones(size, 1), torch.zeros(size, 1)
    terms = [Term(f"m{i}", oracle_model(f"m{i}", m, SCHEDULE, (nulls or {}).get(i)), cond, null,
                  weight=(weights or [1.0] * len(experts))[i],
                  baseline=(baselines or [Baseline.SHARED] * len(experts))[i])
             for i, m in enumerate(experts)]
    return ComposedEps(oracle_model("prior", prior, SCHEDULE), terms, batch_size=size, prior_mixture=mixture)


def draw(predictor, method=MethodConfig(), *, dim=1, trace=None, **kwargs):
    return sample(predictor, make_scheduler("ddpm", SCHEDULE), shape=(IMAGES, dim, 1, 1), steps=STEPS,
                  generator=torch.Generator().manual_seed(0), progress=False, method=method, trace=trace, **kwargs)


def product_target(experts, prior):
    return grid_target(lambda x: sum(m.log_prob(x) for m in experts) - (len(experts) - 1) * prior.log_prob(x))


@EITHER_VARIANCE
def test_particles_recover_the_product_of_a_bimodal_and_a_gaussian_expert(variance):
    target = product_target([BIMODAL, RIGHT], WIDE_PRIOR)
    naive = ks_distance(draw(composed([BIMODAL, RIGHT], WIDE_PRIOR)), target)
    trace = Trace()
    fk = ks_distance(draw(composed([BIMODAL, RIGHT], WIDE_PRIOR, particles=8), MethodConfig(particles=8, sde_variance=variance),
                          trace=trace), target)
    assert naive > 0.12  # the sum's bias: 20% of its samples in the mode the product all but removes, not 5%
    assert fk < CLOSER[variance] * naive
    assert trace.resamplings == STEPS - 1 and all(0.5 < ess <= 1.0 for ess in trace.ess)


@EITHER_VARIANCE
def test_more_particles_come_closer(variance):
    target = product_target([BIMODAL, RIGHT], WIDE_PRIOR)
    distances = [ks_distance(draw(composed([BIMODAL, RIGHT], WIDE_PRIOR, particles=k), MethodConfig(particles=k, sde_variance=variance)),
                             target) for k in (2, 8)]
    assert distances[1] < distances[0]


@EITHER_VARIANCE
def test_particles_recover_a_2d_gaussian_product(variance):
    a = Mixture.gaussian((-0.4, 0.0), (0.25, 0.8))
    b = Mixture.gaussian((0.4, 0.3), (0.8, 0.25))
    precision = 1 / torch.tensor([0.25, 0.8]) ** 2 + 1 / torch.tensor([0.8, 0.25]) ** 2 - 1.0
    mean = (torch.tensor([-0.4, 0.0]) / torch.tensor([0.25, 0.8]) ** 2
            + torch.tensor([0.4, 0.3]) / torch.tensor([0.8, 0.25]) ** 2) / precision
    cov = torch.diag(1 / precision).double()
    naive = gaussian_w2(draw(composed([a, b]), dim=2), mean.double(), cov)
    fk = gaussian_w2(draw(composed([a, b], particles=8), MethodConfig(particles=8, sde_variance=variance), dim=2), mean.double(), cov)
    assert naive > 0.05
    assert fk < CLOSER[variance] * naive


@EITHER_VARIANCE
def test_particles_with_own_baselines_and_a_not(variance):
    """w = (1.5, -0.5) with the second expert's difference taken against its own null: the target is
    p_u^(1 - 1.5) p_a^1.5 (p_b / n_b)^-0.5, still a geometric mixture, so the same weights apply."""
    a, b, own_null = LEFT_NARROW, RIGHT_WIDE, Mixture.gaussian(0.3, 0.7)
    log_target = (lambda x: -0.5 * PRIOR.log_prob(x) + 1.5 * a.log_prob(x)
                  - 0.5 * (b.log_prob(x) - own_null.log_prob(x)))
    target = grid_target(log_target)
    settings = dict(weights=[1.5, -0.5], baselines=[Baseline.SHARED, Baseline.OWN], nulls={1: own_null})
    naive = ks_distance(draw(composed([a, b], **settings)), target)
    fk = ks_distance(draw(composed([a, b], particles=8, **settings), MethodConfig(particles=8, sde_variance=variance)), target)
    assert naive > 0.08
    assert fk < CLOSER[variance] * naive


def test_mala_corrects_the_gaussian_product_and_reports_its_acceptance():
    target = product_target([LEFT_NARROW, RIGHT_WIDE], PRIOR)
    naive = ks_distance(draw(composed([LEFT_NARROW, RIGHT_WIDE])), target)
    trace = Trace()
    mala = ks_distance(draw(composed([LEFT_NARROW, RIGHT_WIDE]), MethodConfig(corrector=Corrector.MALA),
                            trace=trace, corrector_steps=3, corrector_size=1.0), target)
    assert naive > 0.1
    assert mala < 0.5 * naive
    assert len(trace.acceptance) == STEPS - 1 and 0.8 < sum(trace.acceptance) / len(trace.acceptance) < 1.0


def test_mala_keeps_the_exact_noised_product_where_ula_at_the_same_step_does_not():
    """At t = 300T/1000, started far off: the product of the noised experts is a Gaussian known in closed form."""
    predictor = composed([LEFT_NARROW, RIGHT_WIDE])
    t = 300
    abar = float(alphas_cumprod(SCHEDULE)[t])
    var = [abar * s**2 + 1 - abar for s in (0.3, 0.4, 1.0)]
    std = (1 / var[0] + 1 / var[1] - 1 / var[2]) ** -0.5
    start = torch.full((IMAGES, 1, 1, 1), 2.0)
    generator = torch.Generator().manual_seed(0)
    trace = Trace()
    x = start
    for _ in range(10):
        x, _ = mala_correct(predictor, x, torch.tensor(t), abar, steps=20, size=2.0, generator=generator, trace=trace)
    ula = langevin_correct(predictor, start, torch.tensor(t), abar, steps=200, size=2.0, generator=generator)
    assert abs(x.std().item() - std) / std < 0.03
    assert abs(ula.std().item() - std) / std > 0.3
    assert 0.5 < sum(trace.acceptance) / len(trace.acceptance) < 0.9


def _ito_errors(steps, variance):
    """Tracked minus exact log p_t(x_t) - log p_T(x_T) for two experts along one naive-sum trajectory, and the
    model-independent term the estimator leaves out, -div f dtau = (D/2) sum beta."""
    predictor = composed([BIMODAL, RIGHT], WIDE_PRIOR)
    scheduler = make_scheduler("ddpm", SCHEDULE)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(IMAGES, 1, 1, 1, generator=generator)
    x_start, tracked, omitted = x, torch.zeros(IMAGES, 2, dtype=torch.float64), 0.0
    for t in scheduler.timesteps[:-1]:  # the last step lands on the posterior mean, off the SDE
        abar, abar_prev = (float(scheduler.alphas_cumprod[int(s)]) for s in (t, scheduler.previous_timestep(t)))
        step = Step(x, abar, abar_prev, torch.randn(x.shape, generator=generator), variance)
        x_next = step.move(predictor(x, t))
        tracked += ito_increment(step, x_next, predictor.parts(x, t).conditional)
        omitted += 0.5 * step.beta
        x = x_next
    end, start = (float(scheduler.alphas_cumprod[int(s)]) for s in (scheduler.timesteps[-1], scheduler.timesteps[0]))
    exact = torch.stack([m.log_prob(x.flatten(1), end) - m.log_prob(x_start.flatten(1), start)
                         for m in (BIMODAL, RIGHT)], dim=1)
    return tracked - exact, exact, omitted


@EITHER_VARIANCE
def test_ito_estimator_tracks_the_exact_log_density_along_the_trajectory(variance):
    """Summed increments along a reverse trajectory give each expert's exact log p_t(x_t) - log p_T(x_T), whatever
    drift moved x (here the naive sum's), up to the constant left out, with an error that shrinks with the step."""
    coarse, _, _ = _ito_errors(100, variance)
    error, exact, omitted = _ito_errors(1000, variance)
    for j in range(2):
        assert abs(error[:, j].mean().item() - omitted) < 0.1
        assert error[:, j].std() < 0.3 * exact[:, j].std()
        assert error[:, j].std() < 0.5 * coarse[:, j].std()  # the step's strong order 1/2


@EITHER_VARIANCE
def test_balanced_and_keeps_the_experts_log_densities_equal(variance):
    """SuperDiff's AND: samples where both experts' (normalised) log-densities agree; the naive sum lands where
    the narrow expert dominates."""
    def gap(x):
        return float((LEFT_NARROW.log_prob(x.flatten(1)) - RIGHT_WIDE.log_prob(x.flatten(1))).abs().mean())

    naive = gap(draw(composed([LEFT_NARROW, RIGHT_WIDE])))
    balanced = gap(draw(composed([LEFT_NARROW, RIGHT_WIDE]), MethodConfig(combiner=Combiner.BALANCED, sde_variance=variance)))
    assert naive > 1.0
    assert balanced < 0.5 * naive


@EITHER_VARIANCE
def test_or_samples_the_mixture_where_the_weighted_sum_gives_the_geometric_one(variance):
    left, right = Mixture.gaussian(-1.0, 0.3), Mixture.gaussian(1.0, 0.3)
    log_pi = torch.tensor([0.3, 0.7]).log()
    target = grid_target(lambda x: torch.logaddexp(left.log_prob(x) + log_pi[0], right.log_prob(x) + log_pi[1]))
    geometric = ks_distance(draw(composed([left, right], weights=[0.3, 0.7])), target)
    exact = ks_distance(draw(composed([left, right], weights=[0.3, 0.7]), MethodConfig(combiner=Combiner.OR, sde_variance=variance)),
                        target)
    assert geometric > 0.3  # one mode between the two
    assert exact < 0.05


@EITHER_VARIANCE
def test_or_mixes_two_priors_where_the_prior_mixture_is_geometric(variance):
    """A prior mixture of the shared prior and a model's own null (two datasets' priors), nothing conditional:
    prior_mixing 'or' samples 0.5 p_u + 0.5 n_b, the default the geometric mixture between them."""
    first, second = Mixture.gaussian(-1.0, 0.3), Mixture.gaussian(1.0, 0.3)
    target = grid_target(lambda x: torch.logaddexp(first.log_prob(x), second.log_prob(x)))
    settings = dict(prior=first, weights=[0.0], baselines=[Baseline.OWN], nulls={0: second},
                    mixture={"prior": 0.5, "m0": 0.5})
    geometric = ks_distance(draw(composed([second], **settings)), target)
    exact = ks_distance(draw(composed([second], **settings), MethodConfig(prior_mixing=PriorMixing.OR, sde_variance=variance)), target)
    assert geometric > 0.3
    assert exact < 0.05


@pytest.mark.parametrize("scheduler", ["ddim", "dpm++", "euler"])
def test_the_stochastic_methods_refuse_ode_samplers(scheduler):
    from mcdm.errors import MethodError

    with pytest.raises(MethodError, match="needs the ddpm sampler"):
        sample(composed([RIGHT], particles=2), make_scheduler(scheduler, SCHEDULE), shape=(IMAGES, 1, 1, 1),
               steps=2, generator=torch.Generator().manual_seed(0), progress=False, method=MethodConfig(particles=2))
