"""The combiner against the closed forms of DESIGN.md, for N = 1..4 modalities."""

import pytest
import torch

from conftest import TEST_DEVICE
from mcdm.combine import Baseline, TimeWindow, combine, mix_priors

DEVICES = sorted({"cpu", TEST_DEVICE} | ({"cuda"} if torch.cuda.is_available() else set()))


def predictions(n, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    eps_u = torch.randn(2, 3, 8, 8, generator=g).to(device)
    eps = [torch.randn(2, 3, 8, 8, generator=g).to(device) for _ in range(n)]
    return eps_u, eps


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_unit_weights_are_mcdm_eq12(n, device):
    eps_u, eps = predictions(n, device)
    expected = sum(eps) - (n - 1) * eps_u
    torch.testing.assert_close(combine(eps_u, eps, [1.0] * n), expected)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_weighted_conjunction_and_negation(n, device):
    eps_u, eps = predictions(n, device, seed=n)
    weights = [1.5, -0.7, 2.0, -1.0][:n]  # negative weights are NOT
    expected = eps_u.clone()
    for w, e in zip(weights, eps):
        expected += w * (e - eps_u)
    torch.testing.assert_close(combine(eps_u, eps, weights), expected)


def test_negation_pushes_away_from_the_condition():
    eps_u, (eps_1,) = predictions(1, "cpu")
    out = combine(eps_u, [eps_1], [-1.0])
    torch.testing.assert_close(out, 2 * eps_u - eps_1)


@pytest.mark.parametrize("device", DEVICES)
def test_per_pixel_weight_map_only_speaks_where_it_is_on(device):
    eps_u, (eps_1, eps_2) = predictions(2, device)
    weight_map = torch.zeros(1, 1, 8, 8, device=device)
    weight_map[..., :4] = 1.0  # left half known
    out = combine(eps_u, [eps_1, eps_2], [weight_map, 1.0])
    torch.testing.assert_close(out[..., :4], eps_1[..., :4] + eps_2[..., :4] - eps_u[..., :4])
    torch.testing.assert_close(out[..., 4:], eps_2[..., 4:])


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_own_baseline_takes_each_difference_against_the_models_own_null(n):
    eps_u, eps = predictions(n, "cpu")
    _, own = predictions(n, "cpu", seed=99)
    weights = [1.0, 0.5, 2.0, -1.0][:n]
    expected = eps_u + sum(w * (e - b) for w, e, b in zip(weights, eps, own))
    torch.testing.assert_close(combine(eps_u, eps, weights, own), expected)


def test_mixed_baselines_use_the_prior_where_none_is_given():
    eps_u, (eps_1, eps_2) = predictions(2, "cpu")
    _, (own_1,) = predictions(1, "cpu", seed=5)
    out = combine(eps_u, [eps_1, eps_2], [1.0, 1.0], [own_1, None])
    torch.testing.assert_close(out, eps_u + (eps_1 - own_1) + (eps_2 - eps_u))


def test_zero_modalities_is_the_prior():
    eps_u, _ = predictions(0, "cpu")
    assert torch.equal(combine(eps_u, [], []), eps_u)


def test_mismatched_lengths_are_errors():
    eps_u, eps = predictions(2, "cpu")
    with pytest.raises(ValueError, match="2 predictions but 1 weights"):
        combine(eps_u, eps, [1.0])
    with pytest.raises(ValueError, match="baselines"):
        combine(eps_u, eps, [1.0, 1.0], [None])


def test_mixture_of_priors_is_a_convex_combination():
    _, (a, b) = predictions(2, "cpu")
    torch.testing.assert_close(mix_priors([a, b], [0.25, 0.75]), 0.25 * a + 0.75 * b)
    with pytest.raises(ValueError, match="sum to 1"):
        mix_priors([a, b], [0.5, 0.6])


def test_time_window():
    window = TimeWindow(0.5, 1.0)
    assert window.contains(0.9) and window.contains(0.5) and not window.contains(0.2)
    with pytest.raises(ValueError, match="start <= end"):
        TimeWindow(0.8, 0.2)


def test_baseline_names():
    assert Baseline("own") is Baseline.OWN and Baseline("shared") is Baseline.SHARED
