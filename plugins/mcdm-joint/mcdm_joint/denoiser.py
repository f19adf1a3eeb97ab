"""The ``unet_joint`` denoiser: the text model's UNet with the sketch and mask channels concatenated to x_t.

``forward(x_t, t, cond)`` takes the joint condition of ``mcdm_joint.modality``: ``cond[:, :-1]`` are the
image-like channels, ``cond[:, -1]`` the token plane whose first ``context_length`` entries are the caption.
The class extends the registered ``unet_text`` denoiser class (:func:`joint_denoiser_class`), so it is saved and
loaded exactly as ``unet_text`` (``unet/`` + ``text_encoder/``, the same tensor names); the UNet's
``in_channels`` says how many condition channels it takes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import torch

from mcdm.errors import ConditionError
from mcdm.modality import Denoiser
from mcdm_joint import DENOISER_TYPE

TEXT_DENOISER = "unet_text"
"""The registered denoiser type whose UNet, frozen text tower, folder layout and text cache the joint model uses."""


@cache
def joint_denoiser_class(text_denoiser: type[Denoiser]) -> type[Denoiser]:
    """The ``unet_joint`` class over ``text_denoiser`` (the class registered as ``unet_text``).

    It relies on that class's ``build(cond_channels=...)`` (extra UNet inputs), ``config()``, ``unet``,
    ``context_length`` and ``encode_text(tokens)``. One class per text class, so every plugin set shares it.
    """

    class JointUNetDenoiser(text_denoiser):
        type_name = DENOISER_TYPE
        _token_source: tuple | None = None  # (condition, its version, its tokens): see _tokens

        @classmethod
        def build(cls, *, cond_channels: int, **config: Any) -> "JointUNetDenoiser":
            """The text model's architecture and tower (``unet_text``'s build) with ``cond_channels`` more inputs."""
            return super().build(cond_channels=cond_channels, **config)

        @property
        def cond_channels(self) -> int:
            return int(self.unet.config.in_channels) - int(self.unet.config.out_channels)

        def _tokens(self, cond: torch.Tensor) -> torch.Tensor:
            """The caption tokens of the token plane; the same tensor for the same condition, so that the text
            encodings cached for it (on an accelerator, by tensor) are found at every step."""
            cached = self._token_source
            if cached is not None and cached[0] is cond and cached[1] == cond._version:
                return cached[2]
            tokens = cond[:, -1].flatten(1)[:, : self.context_length].round().long()
            self._token_source = (cond, cond._version, tokens)
            return tokens

        def config(self) -> dict:
            return {**super().config(), "cond_channels": self.cond_channels}

        def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
            expected = (self.cond_channels + 1, x_t.shape[-2], x_t.shape[-1])
            if cond is None or cond.ndim != 4 or tuple(cond.shape[1:]) != expected:
                got = "none" if cond is None else tuple(cond.shape)
                raise ConditionError(f"the {DENOISER_TYPE} denoiser needs a joint condition (B, *{expected}), "
                                     f"got {got}")
            states = self.encode_text(self._tokens(cond))
            if cond.shape[0] != x_t.shape[0]:
                cond = cond.expand(x_t.shape[0], -1, -1, -1)
                states = states.expand(x_t.shape[0], -1, -1)
            x = torch.cat([x_t, cond[:, :-1].to(x_t.dtype)], dim=1)
            return self.unet(x, t, encoder_hidden_states=states.to(x_t.dtype)).sample

    return JointUNetDenoiser
