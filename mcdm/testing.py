"""Conformance tests every modality plugin runs: subclass ``ModalityConformance`` in the plugin's tests.

    class TestSketch(ModalityConformance):
        modality_name = "sketch"
        def valid_inputs(self): return [drawing_a, drawing_b]   # two inputs that differ

The checks are the engine's contract with a modality: found through entry points, ``prepare`` gives finite
conditions of a fixed shape, the null condition matches it, and the denoiser built from ``denoiser_config``
accepts the condition and answers differently to different conditions.
"""

from __future__ import annotations

from typing import Any

import torch

SIZE = 32


class ModalityConformance:
    modality_name: str = ""

    def valid_inputs(self) -> list[Any]:
        """Two or more raw inputs that mean different things."""
        raise NotImplementedError

    @property
    def modality(self):
        from mcdm.plugins import make_plugin_manager

        return make_plugin_manager(strict=True).modality(self.modality_name)

    def prepared(self) -> list[torch.Tensor]:
        modality = self.modality
        return [modality.prepare(raw, size=SIZE) for raw in self.valid_inputs()]

    def test_registered_through_entry_points(self):
        from mcdm.plugins import make_plugin_manager

        plugins = make_plugin_manager(strict=True)
        assert self.modality_name in plugins.modalities
        assert plugins.modality(self.modality_name).name == self.modality_name

    def test_prepare_gives_finite_conditions_of_one_shape(self):
        conditions = self.prepared()
        assert len({tuple(c.shape) for c in conditions}) == 1
        for c in conditions:
            assert not c.is_floating_point() or torch.isfinite(c).all()
        assert any(not torch.equal(conditions[0], c) for c in conditions[1:])

    def test_prepare_is_deterministic(self):
        first, second = self.prepared(), self.prepared()
        assert all(torch.equal(a, b) for a, b in zip(first, second))

    def test_null_condition_matches_the_condition(self):
        condition = self.prepared()[0]
        null = self.modality.null_condition(condition)
        assert null.shape == condition.shape and null.dtype == condition.dtype
        assert not torch.equal(null, condition)

    def test_weight_map_is_a_map_in_unit_range(self):
        condition = self.prepared()[0]
        weight = self.modality.weight_map(condition)
        if weight is not None:
            assert weight.shape == (SIZE, SIZE)
            assert weight.min() >= 0 and weight.max() <= 1

    def test_denoiser_answers_to_its_condition(self):
        from mcdm.plugins import make_plugin_manager

        plugins = make_plugin_manager(strict=True)
        modality = plugins.modality(self.modality_name)
        config = modality.denoiser_config(sample_size=SIZE, image_channels=3)
        torch.manual_seed(0)
        denoiser = plugins.denoiser_class(modality.denoiser_type).build(**config).eval()
        conditions = self.prepared()
        x, t = torch.randn(1, 3, SIZE, SIZE), torch.tensor([500])
        with torch.no_grad():
            outputs = [denoiser(x, t, c[None]) for c in conditions]
        assert outputs[0].shape == x.shape
        assert (outputs[0] - outputs[1]).abs().max() > 1e-6
