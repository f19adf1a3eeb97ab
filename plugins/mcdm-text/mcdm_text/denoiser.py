"""The ``unet_text`` denoiser: a diffusers ``UNet2DConditionModel`` cross-attending to a frozen CLIP text tower.

``forward(x_t, t, tokens)`` encodes the caption tokens ``(B, L)`` into the text transformer's per-token
states ``(B, L, width)`` (after ``ln_final``) and hands them to the UNet as ``encoder_hidden_states``.
The text tower is frozen (eval mode, no gradients) and is never trained with the UNet, so its output for
a caption never changes: encodings are cached, and the null caption is encoded once.

Folder layout (inside an mcdm model folder)::

    unet/           diffusers save_pretrained: config.json + diffusion_pytorch_model.safetensors
    text_encoder/   config.json ({"text_cfg": ...}) + model.safetensors
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import torch
from diffusers import UNet2DConditionModel

from mcdm.errors import CheckpointError, ConditionError, ConfigError
from mcdm.modality import Denoiser, broadcast_condition
from mcdm.readers import DIFFUSERS_WEIGHTS, read_json_object, safetensors_weights
from mcdm_text import DENOISER_TYPE
from mcdm_text.clip import (
    TINY_CLIP_CONFIG,
    build_text_encoder,
    freeze,
    load_clip_text_encoder,
    load_text_encoder,
    read_clip_config,
    save_text_encoder,
)

UNET_FOLDER = "unet"
TEXT_ENCODER_FOLDER = "text_encoder"
POOLING_HEAD_WIDTH = 32
"""Channels per head of the caption's attention pooling (``pooled_text``)."""
CACHE_SIZE = 256
"""Captions whose encodings are kept (CPU inputs: one entry per distinct caption, about 32 KiB each)."""


class TextUNetDenoiser(Denoiser):
    type_name = DENOISER_TYPE

    def __init__(self, unet: UNet2DConditionModel, text_encoder: torch.nn.Module, text_cfg: dict):
        super().__init__()
        width = int(text_cfg["width"])
        if int(unet.config.cross_attention_dim) != width:
            raise ConfigError(
                f"the UNet cross-attends to {unet.config.cross_attention_dim}-wide states "
                f"but the text encoder is {width} wide"
            )
        self.unet = unet
        self.text_encoder = freeze(text_encoder)
        self.text_cfg = dict(text_cfg)
        self.context_length = int(text_cfg["context_length"])
        self.sample_size = int(unet.config.sample_size)
        self.image_channels = int(unet.config.out_channels)
        self._rows: OrderedDict[bytes, torch.Tensor] = OrderedDict()  # CPU tokens: caption bytes -> (L, width)
        self._batch: tuple[torch.Tensor, int, torch.Tensor] | None = None  # other devices: (tokens, version, states)

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        *,
        sample_size: int,
        image_channels: int = 3,
        block_out_channels: Sequence[int] = (32, 64, 64),
        layers_per_block: int = 1,
        attention_head_dim: int = 4,
        clip_path: str | None = None,
        text_cfg: dict | None = None,
        cond_channels: int = 0,
        pooled_text: bool = False,
        **_: Any,
    ) -> "TextUNetDenoiser":
        """A fresh UNet; the frozen text tower of the CLIP at ``clip_path`` (a random one of ``text_cfg`` if None).

        ``cond_channels``: image-like conditions a subclass concatenates to x_t (the text model itself takes none).
        ``pooled_text``: see :func:`make_unet`.
        """
        text_encoder, text_cfg = text_tower(clip_path, text_cfg)
        unet = make_unet(sample_size, image_channels, block_out_channels, layers_per_block, attention_head_dim,
                         cross_attention_dim=int(text_cfg["width"]), extra_in_channels=cond_channels,
                         pooled_text=pooled_text)
        return cls(unet, text_encoder, text_cfg)

    def config(self) -> dict:
        cfg = self.unet.config
        return {
            "sample_size": int(cfg.sample_size),
            "image_channels": int(cfg.out_channels),
            "block_out_channels": [int(c) for c in cfg.block_out_channels],
            "layers_per_block": int(cfg.layers_per_block),
            "attention_head_dim": _first(cfg.attention_head_dim),
            "pooled_text": cfg.addition_embed_type == "text",
            "text_cfg": self.text_cfg,
        }

    def save_weights(self, folder: Path) -> None:
        folder = Path(folder)
        self.unet.save_pretrained(folder / UNET_FOLDER, safe_serialization=True)
        save_text_encoder(self.text_encoder, self.text_cfg, folder / TEXT_ENCODER_FOLDER)

    @classmethod
    def load_weights(cls, folder: Path, config: dict) -> "TextUNetDenoiser":
        folder = Path(folder)
        for sub in (UNET_FOLDER, TEXT_ENCODER_FOLDER):
            if not (folder / sub).is_dir():
                raise CheckpointError(f"{str(folder)!r} has no {sub}/ folder: it is not a {DENOISER_TYPE} model")
        safetensors_weights(folder / UNET_FOLDER, DIFFUSERS_WEIGHTS, CheckpointError)  # never a pickle
        read_json_object(folder / UNET_FOLDER / "config.json", CheckpointError)
        unet = UNet2DConditionModel.from_pretrained(folder / UNET_FOLDER, use_safetensors=True)
        text_encoder, text_cfg = load_text_encoder(folder / TEXT_ENCODER_FOLDER)
        return cls(unet, text_encoder, text_cfg)

    # --- the network ----------------------------------------------------------------------------

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if cond is None:
            raise ConditionError(f"the {DENOISER_TYPE} denoiser needs caption tokens (B, {self.context_length}), "
                                 "got none; pass the null caption's tokens for an unconditional prediction")
        states = broadcast_condition(self.encode_text(cond), x_t.shape[0], "captions")
        return self.unet(x_t, t, encoder_hidden_states=states.to(x_t.dtype)).sample

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, L)`` (or ``(L,)``) -> per-token states ``(B, L, width)`` of the frozen text tower, cached."""
        tokens = self._check_tokens(tokens)
        if tokens.device.type == "cpu":
            return self._encode_rows(tokens)
        return self._encode_batch(tokens)

    def clear_text_cache(self) -> None:
        self._rows.clear()
        self._batch = None

    def _check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        if not isinstance(tokens, torch.Tensor) or tokens.is_floating_point() or tokens.is_complex():
            kind = tokens.dtype if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ConditionError(f"the {DENOISER_TYPE} denoiser expects integer token ids, got {kind}")
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or tokens.shape[-1] != self.context_length:
            raise ConditionError(f"expected token ids of shape (B, {self.context_length}), got {tuple(tokens.shape)}")
        return tokens.long()

    def _encode_rows(self, tokens: torch.Tensor) -> torch.Tensor:
        """CPU tokens: reading them costs nothing, so the cache is per caption (the null caption is one entry)."""
        keys = [row.tobytes() for row in tokens.numpy()]
        missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            states = self._run_text_encoder(tokens[[first[k] for k in missing]])
            for key, row in zip(missing, states):
                self._rows[key] = row
        rows = []
        for key in keys:
            row = self._rows[key]
            if row.is_inference() and not torch.is_inference_mode_enabled():
                row = self._rows[key] = row.clone()  # made while sampling, now needed by autograd: a normal copy
            self._rows.move_to_end(key)
            rows.append(row)
        while len(self._rows) > CACHE_SIZE:
            self._rows.popitem(last=False)
        return torch.stack(rows)

    def _encode_batch(self, tokens: torch.Tensor) -> torch.Tensor:
        """Accelerator tokens: reading them would sync the device, so the cache is the last batch *tensor* seen.

        A sampler passes the same condition tensor at every step, so its encoding is computed once.
        """
        cached = self._batch
        if cached is not None and cached[0] is tokens and cached[1] == tokens._version:
            states = cached[2]
            if not (states.is_inference() and not torch.is_inference_mode_enabled()):
                return states
        states = self._run_text_encoder(tokens)
        self._batch = (tokens, tokens._version, states)
        return states

    @torch.no_grad()
    def _run_text_encoder(self, tokens: torch.Tensor) -> torch.Tensor:
        device = next(self.text_encoder.parameters()).device
        with torch.autocast(device.type, enabled=False):  # the tower's own precision, whatever the caller's
            _, states = self.text_encoder(tokens.to(device))
        return states.detach()

    # the cache follows the module: moving or casting it (or loading weights) empties the cache
    def _apply(self, fn, *args, **kwargs):
        self.clear_text_cache()
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        self.clear_text_cache()
        return super().load_state_dict(*args, **kwargs)

    def requires_grad_(self, requires_grad: bool = True):
        super().requires_grad_(requires_grad)
        self.text_encoder.requires_grad_(False)  # frozen whatever the caller asks for the UNet
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.text_encoder.eval()  # frozen: dropout and friends stay off even while the UNet trains
        return self


def text_tower(clip_path: str | None, text_cfg: dict | None) -> tuple[torch.nn.Module, dict]:
    """``(frozen encoder, text_cfg)``: the text tower of the CLIP at ``clip_path``, or a random one of ``text_cfg``."""
    if clip_path:
        clip_text_cfg = read_clip_config(clip_path)["text_cfg"]
        if text_cfg is not None and dict(text_cfg) != dict(clip_text_cfg):
            raise ConfigError(f"text_cfg {text_cfg} differs from the text_cfg of the CLIP at {clip_path!r}: "
                              f"{clip_text_cfg}; give one or the other")
        return load_clip_text_encoder(clip_path), clip_text_cfg
    text_cfg = dict(text_cfg or TINY_CLIP_CONFIG["text_cfg"])
    return build_text_encoder(text_cfg), text_cfg


def make_unet(
    sample_size: int,
    image_channels: int,
    block_out_channels: Sequence[int],
    layers_per_block: int,
    attention_head_dim: int,
    *,
    cross_attention_dim: int,
    extra_in_channels: int = 0,
    pooled_text: bool = False,
) -> UNet2DConditionModel:
    """A small conditional UNet: plain blocks at full resolution, cross-attention at every lower one.

    ``extra_in_channels`` are image-like conditions concatenated to x_t (the joint oracle's sketch and mask).
    ``pooled_text`` adds an attention-pooled summary of the token states to the time embedding (diffusers'
    ``addition_embed_type="text"``): every block then hears the whole caption, not only the cross-attention
    layers at the lower resolutions, which is what global attributes (eyeglasses, a hat, a smile) need.
    """
    depth = len(block_out_channels)
    if depth < 2:
        raise ConfigError(f"block_out_channels needs at least two levels, got {list(block_out_channels)}")
    down = ("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (depth - 1)
    up = ("CrossAttnUpBlock2D",) * (depth - 1) + ("UpBlock2D",)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=image_channels + extra_in_channels,
        out_channels=image_channels,
        block_out_channels=tuple(int(c) for c in block_out_channels),
        layers_per_block=layers_per_block,
        down_block_types=down,
        up_block_types=up,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=attention_head_dim,
        addition_embed_type="text" if pooled_text else None,
        addition_embed_type_num_heads=max(1, cross_attention_dim // POOLING_HEAD_WIDTH),
        norm_num_groups=min(8, min(block_out_channels)),
    )


def _first(value: Any) -> int:
    return int(value[0]) if isinstance(value, (list, tuple)) else int(value)
