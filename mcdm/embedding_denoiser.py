"""A base for conditions that are not images: a class label or a vector, embedded and added to the time embedding.

``EmbeddingUNetDenoiser`` is a diffusers ``UNet2DModel`` (the architecture of the built-in ``unet``) whose
``class_embedding`` is left to an embedding of ours: ``condition="label"`` reads integer ids ``(B,)`` through an
``nn.Embedding`` of ``condition_dim`` rows (the null label among them), ``condition="vector"`` reads float vectors
``(B, condition_dim)`` through a linear layer. Every block hears the condition through the time embedding, so it
speaks globally (a hair colour, an identity, a style), never per pixel.

A plugin subclasses it with its own ``type_name`` and registers that class with ``register_denoisers``.

Folder layout (inside an mcdm model folder)::

    unet/                          diffusers save_pretrained: config.json + diffusion_pytorch_model.safetensors
    condition_embedding.safetensors
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import UNet2DModel

from mcdm.errors import ConditionError, ConfigError
from mcdm.modality import broadcast_condition
from mcdm.unet_denoiser import UNetDenoiser, load_unet_and_module, make_unet2d, save_unet_and_module, unet2d_arguments

EMBEDDING_FILE = "condition_embedding.safetensors"
ConditionKind = Literal["label", "vector"]


class EmbeddingUNetDenoiser(UNetDenoiser):
    type_name = "unet_embedding"

    def __init__(self, unet: UNet2DModel, condition: ConditionKind, condition_dim: int):
        if condition not in ("label", "vector"):
            raise ConfigError(f"condition must be 'label' or 'vector', got {condition!r}")
        if condition_dim < 1:
            raise ConfigError(f"condition_dim must be at least 1, got {condition_dim}")
        super().__init__(unet)
        width = int(unet.time_embedding.linear_2.out_features)
        self.condition, self.condition_dim = condition, int(condition_dim)
        self.embedding = (torch.nn.Embedding(condition_dim, width) if condition == "label"
                          else torch.nn.Linear(condition_dim, width))

    @classmethod
    def build(
        cls,
        *,
        sample_size: int,
        condition_dim: int,
        condition: ConditionKind = "label",
        image_channels: int = 3,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 2,
        attention: bool = True,
        **_: Any,
    ) -> "EmbeddingUNetDenoiser":
        """``condition_dim``: label ids (the null label included) or the vector's length."""
        unet = make_unet2d(sample_size, image_channels, image_channels, block_out_channels, layers_per_block,
                           attention, class_embed_type="identity")
        return cls(unet, condition, condition_dim)

    def config(self) -> dict:
        return {**unet2d_arguments(self.unet), "condition": self.condition, "condition_dim": self.condition_dim}

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        embedded = broadcast_condition(self.embedding(self._checked(cond)), x_t.shape[0], "conditions")
        return self.unet(x_t, t, class_labels=embedded).sample

    def _checked(self, cond: torch.Tensor | None) -> torch.Tensor:
        if self.condition == "label":
            if cond is None or cond.is_floating_point() or cond.ndim != 1:
                got = "none" if cond is None else f"{cond.dtype} of shape {tuple(cond.shape)}"
                raise ConditionError(f"the {self.type_name} denoiser needs integer labels (B,), got {got}")
            return cond.long()
        if cond is None or cond.ndim != 2 or cond.shape[1] != self.condition_dim:
            got = "none" if cond is None else f"shape {tuple(cond.shape)}"
            raise ConditionError(f"the {self.type_name} denoiser needs vectors (B, {self.condition_dim}), got {got}")
        return cond.to(self.embedding.weight.dtype)

    def save_weights(self, folder: Path) -> None:
        save_unet_and_module(folder, self.unet, self.embedding, EMBEDDING_FILE)

    @classmethod
    def load_weights(cls, folder: Path, config: dict) -> "EmbeddingUNetDenoiser":
        unet, embedding = load_unet_and_module(folder, UNet2DModel, EMBEDDING_FILE, cls.type_name)
        denoiser = cls(unet, config.get("condition", "label"), int(config.get("condition_dim", 0)))
        denoiser.embedding.load_state_dict(embedding)
        return denoiser
