"""Fused calls: different models of one architecture evaluated as one vmapped call per step.

The shipped prior, sketch and segmentation models are the same ``UNet2DModel`` but for ``conv_in``'s input
channels (3, 3 + 1, 3 + 20). Zero-padding every model's ``conv_in`` weight and every call's condition to the
widest makes them identical in shape with identical outputs (the padded channels multiply zeros), so their
weights stack (``torch.func.stack_module_state``'s layout) and ``torch.func.vmap`` over the stack runs every
call of a step (own-baseline pairs included: a model's condition and null condition are two calls) as one:
convolutions become grouped convolutions, one kernel per layer instead of one per model.

:func:`fusion_groups` finds the models that fuse; :class:`mcdm.grouped.GroupedEps` runs each group through
:meth:`FusedUNets.forward_group`, and every other model as before.
"""

from __future__ import annotations

import copy
import json
from typing import Literal

import torch

from mcdm.errors import ConfigError

Fuse = Literal["auto", "always", "never"]
FUSE_CHOICES = ("auto", "always", "never")


def fuse_enabled(fuse: Fuse, device: torch.device) -> bool:
    """``auto``: unfused on the CPU, where it was measured not to pay (docs/benchmarks.md), on elsewhere."""
    if fuse not in FUSE_CHOICES:
        raise ConfigError(f"unknown fuse setting {fuse!r}; choose {', '.join(FUSE_CHOICES)}")
    return fuse == "always" or (fuse == "auto" and device.type != "cpu")


class FusedUNets:
    """The stacked, conv_in-padded weights of ``unet`` denoisers (mcdm.unet_denoiser) of one architecture."""

    def __init__(self, denoisers: list, compile: bool = False):
        """``denoisers``: as the predictors call them (a ``torch.compile`` wrapper is looked through)."""
        from diffusers.models.attention_processor import Attention, AttnProcessor

        self.index = {id(d): i for i, d in enumerate(denoisers)}
        self.denoisers = [getattr(d, "_orig_mod", d) for d in denoisers]
        self.in_channels = max(int(d.unet.config.in_channels) for d in self.denoisers)
        self._weights = [self._padded(d.unet) for d in self.denoisers]
        self._stacks: dict[tuple[int, ...], dict[str, torch.Tensor]] = {}
        # a weightless copy the stacked weights are swapped into; the math attention processor, because
        # scaled_dot_product_attention has no vmap batching rule on the CPU (vmap would loop over the models;
        # these UNets attend at their lowest resolution only, so the math kernel costs little anywhere)
        self._skeleton = copy.deepcopy(self.denoisers[0].unet).to("meta")
        for module in self._skeleton.modules():
            if isinstance(module, Attention):
                module.set_processor(AttnProcessor())
        self._run = torch.compile(self._vmapped) if compile else self._vmapped

    def _padded(self, unet) -> dict[str, torch.Tensor]:
        weights = {name: p.detach() for name, p in unet.named_parameters()}
        weights.update({name: b.detach() for name, b in unet.named_buffers()})
        w = weights["conv_in.weight"]
        weights["conv_in.weight"] = torch.cat([w, w.new_zeros(w.shape[0], self.in_channels - w.shape[1], *w.shape[2:])], 1)
        return weights

    def _stacked(self, members: tuple[int, ...]) -> dict[str, torch.Tensor]:
        """The weights of the calls' models, stacked in call order (kept: the active set rarely changes)."""
        if members not in self._stacks:
            self._stacks[members] = {name: torch.stack([self._weights[i][name] for i in members])
                                     for name in self._weights[0]}
        return self._stacks[members]

    def forward_group(self, x_t: torch.Tensor, t: torch.Tensor, calls: list[tuple[object, torch.Tensor | None]]):
        """Raw outputs of every ``(denoiser, condition)`` at x_t, t, in one vmapped call."""
        if len(calls) == 1:  # nothing to fuse with (the prior alone, or one term in its window)
            denoiser, cond = calls[0]
            return [denoiser(x_t, t, cond)]
        members = tuple(self.index[id(denoiser)] for denoiser, _ in calls)
        inputs = torch.stack([self._input(x_t, cond) for _, cond in calls])
        return list(self._run(self._stacked(members), inputs, t).unbind(0))

    def _vmapped(self, weights: dict[str, torch.Tensor], inputs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call, vmap

        def one(w, x):
            return functional_call(self._skeleton, w, (x, t)).sample

        return vmap(one)(weights, inputs)

    def _input(self, x_t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        parts = [x_t] if cond is None else [x_t, cond.to(x_t.dtype).expand(x_t.shape[0], -1, -1, -1)]
        width = sum(part.shape[1] for part in parts)
        pad = x_t.new_zeros(x_t.shape[0], self.in_channels - width, *x_t.shape[2:])
        return torch.cat([*parts, pad], dim=1)


def architecture(denoiser) -> str | None:
    """What must match for two denoisers to fuse: the UNet's config but its input channels (None: not fusible)."""
    from mcdm.unet_denoiser import ConcatUNetDenoiser

    denoiser = getattr(denoiser, "_orig_mod", denoiser)  # a torch.compile wrapper
    if type(denoiser) is not ConcatUNetDenoiser:
        return None
    config = {k: v for k, v in dict(denoiser.unet.config).items() if not k.startswith("_") and k != "in_channels"}
    dtype = next(denoiser.unet.parameters()).dtype
    device = next(denoiser.unet.parameters()).device
    return json.dumps({"config": config, "dtype": str(dtype), "device": str(device)}, sort_keys=True, default=str)


def fusion_groups(denoisers: list, compile: bool = False) -> dict[int, FusedUNets]:
    """{id(denoiser): its group} for every architecture shared by two or more distinct denoisers
    (``compile``: each group's call through ``torch.compile``)."""
    by_arch: dict[str, list] = {}
    for denoiser in denoisers:
        key = architecture(denoiser)
        if key is not None and all(d is not denoiser for d in by_arch.get(key, [])):
            by_arch.setdefault(key, []).append(denoiser)
    groups = {}
    for members in by_arch.values():
        if len(members) > 1:
            group = FusedUNets(members, compile)
            groups.update({id(d): group for d in members})
    return groups
