"""Per-request modality settings (``settings=``): an overlay on the composition's, validated, never kept."""

import numpy as np
import pytest
import torch

from conftest import SIZE
from mcdm.combine import Baseline
from mcdm.config import ModalityConfig
from mcdm.errors import ConfigError, UnknownNameError

MAPS = {name: np.random.default_rng(i).random((SIZE, SIZE)) for i, name in enumerate(("toy_a", "toy_b"))}


def generate(composer, **kwargs):
    return composer.generate_tensor(MAPS, num_images=2, seed=0, steps=4, progress=False, **kwargs)


def test_an_overlay_samples_exactly_what_a_composition_with_those_settings_samples(toy_composer):
    composer = toy_composer(names=("toy_a", "toy_b"))
    overlay = {"toy_a": {"weight": -1.0, "start": 0.2, "baseline": "own"}, "toy_b": {"weight_map": False, "end": 0.9}}
    configured = toy_composer(names=("toy_a", "toy_b"), settings={
        "toy_a": ModalityConfig(path="", weight=-1.0, start=0.2, baseline=Baseline.OWN),
        "toy_b": ModalityConfig(path="", weight_map=False, end=0.9)})
    assert torch.equal(generate(composer, settings=overlay), generate(configured))
    assert not torch.equal(generate(composer, settings=overlay), generate(composer))


def test_an_overlay_leaves_the_composer_as_it_was(toy_composer):
    composer = toy_composer(names=("toy_a", "toy_b"))
    before = dict(composer.settings)
    plain = generate(composer)
    generate(composer, settings={"toy_a": {"weight": 3.0, "baseline": "own"}})
    assert composer.settings == before
    assert torch.equal(generate(composer), plain)


def test_request_settings_merge_over_the_composition_and_normalise_the_baseline(toy_composer):
    composer = toy_composer(names=("toy_a",), settings={"toy_a": ModalityConfig(path="a", weight=2.0, end=0.5)})
    merged = composer.request_settings({"toy_a": {"baseline": "own", "start": 0.1}})["toy_a"]
    assert merged == ModalityConfig(path="a", weight=2.0, start=0.1, end=0.5, baseline=Baseline.OWN)


@pytest.mark.parametrize(
    "overlay, error, message",
    [
        ({"toy_z": {"weight": 1.0}}, UnknownNameError, "'toy_z', which is not in this composition"),
        ({"toy_b": {"weight": 1.0}}, UnknownNameError, "'toy_b', which has no condition in this request"),
        ({"toy_a": {"path": "elsewhere"}}, ConfigError, "unknown key 'path'"),
        ({"toy_a": {"weight": float("nan")}}, ConfigError, "weight must be finite"),
        ({"toy_a": {"weight": "heavy"}}, ConfigError, "weight must be a number"),
        ({"toy_a": {"start": 0.8, "end": 0.2}}, ConfigError, "0 <= start <= end <= 1"),
        ({"toy_a": {"baseline": "mine"}}, ConfigError, "baseline must be one of shared, own"),
        ({"toy_a": {"weight_map": "yes"}}, ConfigError, "weight_map must be true or false"),
    ],
)
def test_a_bad_overlay_is_refused_naming_the_modality_and_setting(toy_composer, overlay, error, message):
    composer = toy_composer(names=("toy_a", "toy_b"))
    with pytest.raises(error, match=message):
        composer.generate_tensor({"toy_a": MAPS["toy_a"]}, steps=1, progress=False, settings=overlay)


def test_a_weight_given_in_weights_and_settings_is_refused(toy_composer):
    composer = toy_composer(names=("toy_a",))
    with pytest.raises(ConfigError, match="weight of 'toy_a' given twice"):
        composer.generate_tensor({"toy_a": MAPS["toy_a"]}, steps=1, progress=False, weights={"toy_a": 2.0},
                                 settings={"toy_a": {"weight": 3.0}})
