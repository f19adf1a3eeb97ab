"""The benchmark's floor makes the same computation as mcdm: equal images for the same seed."""

import numpy as np
import pytest
import torch

from conftest import SIZE
from mcdm.bench import bench, floor, markdown, machine

MAPS = {name: np.random.default_rng(i).random((SIZE, SIZE)) for i, name in enumerate(("toy_a", "toy_b"))}


def test_floor_computes_what_mcdm_computes(toy_composer):
    composer = toy_composer(names=("toy_a", "toy_b"))
    conds = {k: v.unsqueeze(0).expand(2, *v.shape) for k, v in composer.prepare(MAPS).items()}
    ours = composer.generate_tensor(MAPS, num_images=2, steps=3, scheduler="ddim", seed=5, progress=False)
    theirs = floor(composer, conds, 2, 3, "ddim", 5).clamp(-1, 1)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("prediction", ["v_prediction", "sample"])
def test_floor_converts_v_and_x0_outputs_to_eps(make_model, plugins, prediction):
    from mcdm.checkpoint import load_model
    from mcdm.compose import Composer

    composer = Composer(load_model(make_model(None, prediction=prediction), plugins),
                        {"toy_a": load_model(make_model("toy_a", prediction=prediction), plugins)}, plugins=plugins)
    given = {"toy_a": MAPS["toy_a"]}
    conds = {k: v.unsqueeze(0).expand(2, *v.shape) for k, v in composer.prepare(given).items()}
    ours = composer.generate_tensor(given, num_images=2, steps=3, scheduler="ddim", seed=5, progress=False)
    theirs = floor(composer, conds, 2, 3, "ddim", 5).clamp(-1, 1)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_bench_times_every_prefix_and_batch(toy_composer):
    composer = toy_composer(names=("toy_a", "toy_b"))
    timings = bench(composer, MAPS, batch_sizes=(1, 2), steps=2, repeats=1, progress=lambda _: None)
    assert [(len(t.modalities), t.batch_size) for t in timings] == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(t.mcdm_seconds > 0 and t.floor_seconds > 0 and t.fused_seconds > 0 for t in timings)
    assert "| toy_a + toy_b | 2 | 2 |" in markdown(timings, machine(), "mcdm bench")


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # a Fréchet distance of a handful of tiny-model samples
def test_steps_vs_quality_scores_each_setting(make_model, plugins):
    from mcdm.bench import quality_markdown, steps_vs_quality
    from mcdm.checkpoint import load_model
    from mcdm.compose import Composer
    from mcdm.eval.judges import AttributeJudge, Judges, ParsingJudge

    composer = Composer(load_model(make_model(None, size=32), plugins),
                        {"toy_a": load_model(make_model("toy_a", size=32), plugins)}, plugins=plugins)
    judges = Judges(ParsingJudge.build(), AttributeJudge.build())
    rows = steps_vs_quality(composer, judges, n=2, settings=(("ddim", 3), ("dpm++", 2)))
    assert [(r["scheduler"], r["steps"], r["n"]) for r in rows] == [("ddim", 3, 2), ("dpm++", 2, 2)]
    assert "| dpm++ | 2 |" in quality_markdown(rows)


def test_bench_times_mcdm_on_the_floor_s_formula_whatever_the_composition_s_baselines(toy_composer, monkeypatch):
    """The floor takes every difference against the shared prior: each request mcdm is timed on says so too."""
    from mcdm.combine import Baseline
    from mcdm.compose import Composer
    from mcdm.config import ModalityConfig

    composer = toy_composer(names=("toy_a",), settings={"toy_a": ModalityConfig(path="", baseline=Baseline.OWN)})
    asked, generate = [], Composer.generate_tensor

    def recorded(self, conditions, **kwargs):
        if conditions:  # the prior alone has no baseline to set
            asked.append(self.request_settings(kwargs.get("settings")))
        return generate(self, conditions, **kwargs)

    monkeypatch.setattr(Composer, "generate_tensor", recorded)
    bench(composer, {"toy_a": MAPS["toy_a"]}, batch_sizes=(1,), steps=1, repeats=1, progress=lambda _: None)
    assert len(asked) == 2 * 2  # N = 1: unfused and fused, warm-up and one repeat
    assert all(settings["toy_a"].baseline is Baseline.SHARED for settings in asked)
    assert composer.defaults.settings["toy_a"].baseline is Baseline.OWN  # the composer itself is as it was
