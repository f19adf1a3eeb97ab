"""Conformance tests every modality plugin runs: subclass ``ModalityConformance`` in the plugin's tests.

    class TestSketch(ModalityConformance):
        modality_name = "sketch"
        def valid_inputs(self): return [drawing_a, drawing_b]   # two inputs that differ

The checks are the engine's contract with a modality: found through entry points, importing the plugin imports
no torch, ``prepare`` gives finite
conditions of a fixed shape, the null condition matches it, and the denoiser built from ``denoiser_config``
accepts the condition and answers differently to different conditions. The ``check_*`` functions are the
``mcdm.modality.Denoiser`` contract, point by point; the class runs each on the modality's own denoiser, and a
denoiser type's own tests may call them directly.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

SIZE = 32


def _run(denoiser, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    with torch.no_grad():
        return denoiser(x, t, cond)


def check_instance_attributes(denoiser, sample_size: int, image_channels: int) -> None:
    """``sample_size``, ``image_channels`` set on the instance; ``condition_size`` one of the two resolutions."""
    assert denoiser.sample_size == sample_size, f"sample_size {denoiser.sample_size!r}, built for {sample_size}"
    assert denoiser.image_channels == image_channels, f"image_channels {denoiser.image_channels!r}"
    assert denoiser.condition_size in ("sample", "image"), f"condition_size {denoiser.condition_size!r}"


def check_output_and_broadcast(denoiser, cond: torch.Tensor) -> None:
    """(B, C, S, S) out for a batch of conditions; a batch of 1 is shared by all B images."""
    size, channels = denoiser.sample_size, denoiser.image_channels
    x, t = torch.randn(3, channels, size, size, generator=torch.Generator().manual_seed(0)), torch.tensor(500)
    shared = _run(denoiser, x, t, cond[None])
    expanded = _run(denoiser, x, t, cond[None].expand(3, *cond.shape).clone())
    assert shared.shape == x.shape and shared.is_floating_point(), f"output {tuple(shared.shape)}, x_t {tuple(x.shape)}"
    torch.testing.assert_close(shared, expanded, msg="a condition of batch 1 must be broadcast to the batch")


def check_scalar_and_batched_t(denoiser, cond: torch.Tensor) -> None:
    """``t`` as a 0-dim tensor (sampling) and as (B,) integers (training) give the same output."""
    size, channels = denoiser.sample_size, denoiser.image_channels
    x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(1))
    conds = cond[None].expand(2, *cond.shape)
    torch.testing.assert_close(_run(denoiser, x, torch.tensor(250), conds),
                               _run(denoiser, x, torch.tensor([250, 250]), conds),
                               msg="t of shape () and (B,) must give the same output")


def check_config_rebuilds(denoiser) -> None:
    """``config()`` is JSON-ready and ``build(**config())`` makes the same architecture (names and shapes)."""
    config = json.loads(json.dumps(denoiser.config()))  # as mcdm.json stores it
    rebuilt = type(denoiser).build(**config)
    shapes = {k: tuple(v.shape) for k, v in denoiser.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == shapes, \
        "build(**config()) makes a different architecture"
    assert json.loads(json.dumps(rebuilt.config())) == config


def check_weights_round_trip(denoiser, cond: torch.Tensor) -> None:
    """``load_weights(folder, config())`` reads back what ``save_weights`` wrote, as safetensors only."""
    size, channels = denoiser.sample_size, denoiser.image_channels
    x, t = torch.randn(1, channels, size, size, generator=torch.Generator().manual_seed(2)), torch.tensor(100)
    with tempfile.TemporaryDirectory() as tmp:
        denoiser.save_weights(Path(tmp))
        weights = {p.suffix for p in Path(tmp).rglob("*") if p.is_file() and p.suffix not in (".json", ".txt")}
        assert weights == {".safetensors"}, f"save_weights wrote {sorted(weights)}, not safetensors only"
        loaded = type(denoiser).load_weights(Path(tmp), json.loads(json.dumps(denoiser.config()))).eval()
    torch.testing.assert_close(_run(loaded, x, t, cond[None]), _run(denoiser, x, t, cond[None]))


def check_trains(denoiser, cond: torch.Tensor) -> None:
    """A loss on the output gives finite gradients, some of them non-zero."""
    size, channels = denoiser.sample_size, denoiser.image_channels
    x = torch.randn(2, channels, size, size, generator=torch.Generator().manual_seed(3))
    denoiser.train()
    try:
        denoiser.zero_grad(set_to_none=True)
        denoiser(x, torch.tensor([10, 900]), cond[None].expand(2, *cond.shape)).square().mean().backward()
        grads = [p.grad for p in denoiser.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), "no finite gradients"
        assert any(g.abs().max() > 0 for g in grads), "every gradient is zero"
    finally:
        denoiser.zero_grad(set_to_none=True)
        denoiser.eval()


def check_batched_group(denoiser, cond: torch.Tensor) -> None:
    """A denoiser with a ``batch_key`` answers ``forward_group`` as separate ``forward`` calls would."""
    if getattr(denoiser, "batch_key", None) is None:
        return
    size, channels = denoiser.sample_size, denoiser.image_channels
    x, t = torch.randn(1, channels, size, size, generator=torch.Generator().manual_seed(4)), torch.tensor(300)
    with torch.no_grad():
        grouped = denoiser.forward_group(x, t, [(denoiser, cond[None]), (denoiser, cond[None])])
    assert len(grouped) == 2
    torch.testing.assert_close(grouped[0], _run(denoiser, x, t, cond[None]))


DENOISER_CHECKS = (check_output_and_broadcast, check_scalar_and_batched_t, check_weights_round_trip, check_trains,
                   check_batched_group)
"""The checks that take (denoiser, one prepared condition); with check_instance_attributes and
check_config_rebuilds, the whole Denoiser contract."""


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

    def test_importing_the_plugin_does_not_import_torch(self):
        """A plugin is imported by every ``mcdm`` command, ``--help`` too: its classes load on first use."""
        import subprocess
        import sys

        from mcdm.plugins import make_plugin_manager

        plugins = make_plugin_manager(strict=True)
        module = plugins.manager.get_plugin(plugins.modalities[self.modality_name].plugin).__name__
        code = f"import sys, {module}; assert 'torch' not in sys.modules, 'importing {module} imported torch'"
        subprocess.run([sys.executable, "-c", code], check=True)

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

    def denoiser(self):
        """The modality's denoiser, freshly built from its ``denoiser_config`` at SIZE, in eval mode."""
        from mcdm.plugins import make_plugin_manager

        plugins = make_plugin_manager(strict=True)
        modality = plugins.modality(self.modality_name)
        config = modality.denoiser_config(sample_size=SIZE, image_channels=3)
        torch.manual_seed(0)
        return plugins.denoiser_class(modality.denoiser_type).build(**config).eval()

    def test_denoiser_keeps_the_contract(self):
        """Every point of mcdm.modality.Denoiser's contract, on the real and the null condition."""
        denoiser = self.denoiser()
        check_instance_attributes(denoiser, SIZE, 3)
        check_config_rebuilds(denoiser)
        condition = self.prepared()[0]
        for cond in (condition, self.modality.null_condition(condition)):
            for check in DENOISER_CHECKS:
                check(denoiser, cond)

    def test_denoiser_answers_to_its_condition(self):
        denoiser = self.denoiser()
        conditions = self.prepared()
        x, t = torch.randn(1, 3, SIZE, SIZE), torch.tensor([500])
        with torch.no_grad():
            outputs = [denoiser(x, t, c[None]) for c in conditions]
        assert outputs[0].shape == x.shape
        assert (outputs[0] - outputs[1]).abs().max() > 1e-6


def train_tiny(modality: str, out: Path, **denoiser: Any) -> Path:
    """Two training steps of ``modality``'s denoiser through ``mcdm.train`` (``denoiser``: architecture overrides,
    e.g. a tiny one); the model folder written."""
    from mcdm.train import DataConfig, TrainConfig, train

    config = TrainConfig(out=str(out), modality=modality, data=DataConfig(length=8), denoiser=dict(denoiser),
                         steps=2, batch_size=2, warmup_steps=0, sample_every=0, checkpoint_every=2, log_every=1)
    return train(config, progress=False)


def check_composes_with_shipped(modality: str, folder: Path, conditions: dict[str, Any], *, refused: tuple[Any, str],
                                settings: dict | None = None, **denoiser: Any) -> None:
    """``modality``, trained for two steps under ``folder`` (:func:`train_tiny`; ``denoiser``: architecture
    overrides), composes with the shipped models (:func:`extend_shipped`): its bad input ``refused = (raw, message)``
    is a ConditionError matching ``message`` before any model loads, and ``conditions`` (with request ``settings``)
    give two finite images."""
    import pytest

    from mcdm.compose import Composer
    from mcdm.errors import ConditionError

    composition = extend_shipped(folder / "faces", {modality: train_tiny(modality, folder / "run", **denoiser)})
    raw, message = refused
    with pytest.raises(ConditionError, match=message):
        Composer.from_pretrained(composition, conditions={modality: raw})
    images = Composer.from_pretrained(composition).generate_tensor(conditions, num_images=2, steps=2,
                                                                   settings=settings, progress=False)
    assert images.shape == (2, 3, SIZE, SIZE) and torch.isfinite(images).all()


def extend_shipped(folder: Path, models: dict[str, Path]) -> Path:
    """A composition folder extending the shipped ``synthfaces-32`` with ``models`` ({modality: model folder})."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    modalities = {name: {"path": str(Path(path).resolve())} for name, path in models.items()}
    (folder / "composition.yaml").write_text(yaml.safe_dump({"extends": "synthfaces-32", "modalities": modalities}))
    return folder
