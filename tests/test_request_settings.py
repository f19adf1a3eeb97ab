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
    before = composer.defaults
    plain = generate(composer)
    generate(composer, settings={"toy_a": {"weight": 3.0, "baseline": "own"}})
    assert composer.defaults == before
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


def test_the_composition_s_settings_are_frozen_values(toy_composer):
    import dataclasses

    from mcdm.config import CompositionConfig, load_config

    config = load_config(CompositionConfig, overrides=["prior=p", "modalities.toy_a.path=a", "steps=7"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.modalities["toy_a"].weight = 2.0
    composer = toy_composer(names=("toy_a",))
    with pytest.raises(TypeError):  # the defaults' settings are a read-only mapping
        composer.defaults.settings["toy_a"] = ModalityConfig(path="", weight=5.0)


def test_an_own_baseline_asked_for_by_a_request_counts_against_the_batch_memory(toy_composer, monkeypatch):
    """Each own baseline is one more network call per step; a request's overlay costs what a composition's does."""
    from mcdm import compose

    calls = []
    monkeypatch.setattr(compose, "max_images", lambda size, channels, per_step: calls.append(per_step) or 64)
    composer = toy_composer(names=("toy_a",))
    composer.generate_tensor({"toy_a": MAPS["toy_a"]}, steps=1, progress=False)
    composer.generate_tensor({"toy_a": MAPS["toy_a"]}, steps=1, progress=False,
                             settings={"toy_a": {"baseline": "own"}})
    assert calls == [2, 3]


def test_with_models_keeps_the_prior_and_sampler_defaults_and_gives_new_models_default_settings(
        toy_composer, make_model, plugins):
    from mcdm.checkpoint import load_model
    from mcdm.methods import MethodConfig

    composer = toy_composer(names=("toy_a",), scheduler="ddim", corrector_steps=1, method=MethodConfig(),
                            settings={"toy_a": ModalityConfig(path="", weight=2.0)})
    other = composer.with_models({"toy_b": load_model(make_model("toy_b", seed=2), plugins)})
    assert list(other.modalities) == ["toy_b"] and list(composer.modalities) == ["toy_a"]
    assert other.prior.model is composer.prior.model
    assert (other.defaults.scheduler, other.defaults.steps, other.defaults.corrector_steps) == ("ddim", 3, 1)
    assert other.defaults.settings["toy_b"] == ModalityConfig(path="")
