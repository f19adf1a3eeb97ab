"""Batched evaluation: the prior and the terms whose denoisers share one network run as one call per step.

Denoisers that share a network (the Stable Diffusion family's UNet, read with a prompt and with ControlNets) say
so with ``batch_key``, the same object for all that share it, and evaluate a list of ``(denoiser, condition)``
in one batch with ``forward_group(x_t, t, calls)``, one output per call. :class:`GroupedEps` computes what
:class:`~mcdm.predictor.ComposedEps` computes, with those calls merged: N ControlNet terms cost one UNet batch and
N ControlNet calls per step instead of N + 1 UNet calls. Models of one architecture with different weights
run the same way when ``fused`` (:func:`mcdm.fused.fusion_groups`) holds them: one vmapped call.
"""

from __future__ import annotations

import torch

from mcdm.combine import Baseline, Parts
from mcdm.predictor import ComposedEps, EpsModel


def shares_networks(models: list[EpsModel]) -> bool:
    """Whether any model's denoiser takes part in batched calls."""
    return any(getattr(model.denoiser, "batch_key", None) is not None for model in models)


class GroupedEps(ComposedEps):
    """ComposedEps whose network calls are merged by ``batch_key`` or fused (a prior mixture falls back to
    ComposedEps). ``fused``: {id(denoiser): group with ``forward_group``}, from :func:`mcdm.fused.fusion_groups`."""

    def __init__(self, *args, fused: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fused = fused or {}

    def parts(self, x_t: torch.Tensor, t: torch.Tensor) -> Parts:
        """ComposedEps.parts from merged calls; ComposedEps.__call__ combines them as it does its own."""
        if self.prior_mixture:
            return super().parts(x_t, t)
        t_fraction = float(t) / self.num_train_timesteps
        active = [term for term in self.terms if term.window.contains(t_fraction)]
        calls: list[tuple[EpsModel, torch.Tensor | None]] = [(self.prior, None)]
        for term in active:
            calls.append((term.model, term.condition))
            if term.baseline == Baseline.OWN:
                calls.append((term.model, term.null_condition))
        outputs = iter(evaluate(calls, x_t, t, self.fused))
        eps_u = next(outputs)
        predictions, baselines = [], []
        for term in active:
            predictions.append(next(outputs))
            baselines.append(next(outputs) if term.baseline == Baseline.OWN else None)
        return Parts(priors=(eps_u,), prior_weights=(1.0,), conditional=tuple(predictions),
                     baselines=tuple(baselines), weights=tuple(term.weight for term in active))


def evaluate(calls: list[tuple[EpsModel, torch.Tensor | None]], x_t: torch.Tensor, t: torch.Tensor,
             fused: dict | None = None) -> list[torch.Tensor]:
    """eps of every ``(model, condition)`` at x_t, t: calls whose denoisers share a ``batch_key`` in one batch,
    calls whose denoisers are in one ``fused`` group in one fused call."""
    fused = fused or {}
    outputs: list[torch.Tensor | None] = [None] * len(calls)
    groups: dict[int, tuple[object, list[int]]] = {}
    for i, (model, cond) in enumerate(calls):
        group = fused.get(id(model.denoiser))
        key = getattr(model.denoiser, "batch_key", None) if group is None else group
        if key is None:
            outputs[i] = model(x_t, t, cond)
        else:
            groups.setdefault(id(key), (group or model.denoiser, []))[1].append(i)
    for runner, members in groups.values():
        raw = runner.forward_group(x_t, t, [(calls[i][0].denoiser, calls[i][1]) for i in members])
        for i, out in zip(members, raw):
            outputs[i] = calls[i][0].from_output(out, x_t, t)
    return outputs
