"""A base for sequence conditions: token ids read by cross-attention.

``CrossAttentionDenoiser`` is a diffusers ``UNet2DConditionModel`` whose ``encoder_hidden_states`` come from a
small token encoder trained with it: ids ``(B, context_length)`` (long, padding included) -> a token embedding
plus a learned position embedding, layer-normalised -> states ``(B, context_length, width)``. Plain blocks at full
resolution, cross-attention at every lower one. A plugin whose tokens come from a frozen text tower (``unet_text``
of mcdm-text) keeps the same contract with an encoder of its own.

A plugin subclasses it with its own ``type_name`` and registers that class with ``register_denoisers``.

Folder layout (inside an mcdm model folder)::

    unet/                       diffusers save_pretrained: config.json + diffusion_pytorch_model.safetensors
    token_encoder.safetensors
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from diffusers import UNet2DConditionModel

from mcdm.errors import ConditionError, ConfigError
from mcdm.modality import broadcast_condition
from mcdm.unet_denoiser import UNetDenoiser, load_unet_and_module, save_unet_and_module

ENCODER_FILE = "token_encoder.safetensors"


class TokenEncoder(torch.nn.Module):
    """Token ids (B, L) -> states (B, L, width): token + position embeddings, layer-normalised."""

    def __init__(self, vocab_size: int, context_length: int, width: int):
        super().__init__()
        self.tokens = torch.nn.Embedding(vocab_size, width)
        self.positions = torch.nn.Parameter(torch.randn(context_length, width) * 0.02)
        self.norm = torch.nn.LayerNorm(width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.norm(self.tokens(ids) + self.positions)


class CrossAttentionDenoiser(UNetDenoiser):
    type_name = "unet_cross_attention"

    def __init__(self, unet: UNet2DConditionModel, vocab_size: int, context_length: int):
        if vocab_size < 2 or context_length < 1:
            raise ConfigError(f"vocab_size must be at least 2 and context_length at least 1, got {vocab_size} and "
                              f"{context_length}")
        super().__init__(unet)
        self.vocab_size, self.context_length = int(vocab_size), int(context_length)
        self.encoder = TokenEncoder(vocab_size, context_length, int(unet.config.cross_attention_dim))

    @classmethod
    def build(
        cls,
        *,
        sample_size: int,
        vocab_size: int,
        context_length: int,
        image_channels: int = 3,
        width: int = 32,
        block_out_channels: Sequence[int] = (32, 64, 64),
        layers_per_block: int = 1,
        attention_head_dim: int = 4,
        **_: Any,
    ) -> "CrossAttentionDenoiser":
        depth = len(block_out_channels)
        if depth < 2:
            raise ConfigError(f"block_out_channels needs at least two levels, got {list(block_out_channels)}")
        unet = UNet2DConditionModel(
            sample_size=sample_size,
            in_channels=image_channels,
            out_channels=image_channels,
            block_out_channels=tuple(int(c) for c in block_out_channels),
            layers_per_block=layers_per_block,
            down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (depth - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (depth - 1) + ("UpBlock2D",),
            cross_attention_dim=width,
            attention_head_dim=attention_head_dim,
            norm_num_groups=min(8, min(block_out_channels)),
        )
        return cls(unet, vocab_size, context_length)

    def config(self) -> dict:
        cfg = self.unet.config
        head = cfg.attention_head_dim
        return {
            "sample_size": int(cfg.sample_size),
            "image_channels": int(cfg.out_channels),
            "vocab_size": self.vocab_size,
            "context_length": self.context_length,
            "width": int(cfg.cross_attention_dim),
            "block_out_channels": [int(c) for c in cfg.block_out_channels],
            "layers_per_block": int(cfg.layers_per_block),
            "attention_head_dim": int(head[0] if isinstance(head, (list, tuple)) else head),
        }

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if (cond is None or cond.is_floating_point() or cond.ndim != 2 or cond.shape[1] != self.context_length):
            got = "none" if cond is None else f"{cond.dtype} of shape {tuple(cond.shape)}"
            raise ConditionError(f"the {self.type_name} denoiser needs token ids (B, {self.context_length}), got {got}")
        states = broadcast_condition(self.encoder(cond.long()), x_t.shape[0], "sequences")
        return self.unet(x_t, t, encoder_hidden_states=states.to(x_t.dtype)).sample

    def save_weights(self, folder: Path) -> None:
        save_unet_and_module(folder, self.unet, self.encoder, ENCODER_FILE)

    @classmethod
    def load_weights(cls, folder: Path, config: dict) -> "CrossAttentionDenoiser":
        unet, encoder = load_unet_and_module(folder, UNet2DConditionModel, ENCODER_FILE, cls.type_name)
        denoiser = cls(unet, int(config.get("vocab_size", 0)), int(config.get("context_length", 0)))
        denoiser.encoder.load_state_dict(encoder)
        return denoiser
