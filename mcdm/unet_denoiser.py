"""The ``unet`` denoiser: diffusers ``UNet2DModel`` with the condition concatenated to ``x_t``; and ``UNetDenoiser``,
the base of every denoiser whose network is one UNet (the embedding and cross-attention bases too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DModel

from mcdm.errors import CheckpointError, ConditionError
from mcdm.modality import Denoiser
from mcdm.readers import DIFFUSERS_WEIGHTS, read_json_object, safetensors_weights

UNET_FOLDER = "unet"


class UNetDenoiser(Denoiser):
    """A denoiser whose network is one diffusers UNet (``self.unet``): the x_t it denoises is the UNet's."""

    def __init__(self, unet: torch.nn.Module):
        super().__init__()
        self.unet = unet
        self.sample_size = int(unet.config.sample_size)
        self.image_channels = int(unet.config.out_channels)


class ConcatUNetDenoiser(UNetDenoiser):
    type_name = "unet"

    def __init__(self, unet: UNet2DModel, cond_channels: int):
        super().__init__(unet)
        self.cond_channels = cond_channels

    @classmethod
    def build(
        cls,
        *,
        sample_size: int,
        image_channels: int = 3,
        cond_channels: int = 0,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 2,
        attention: bool = True,
        **_: Any,
    ) -> "ConcatUNetDenoiser":
        unet = make_unet2d(sample_size, image_channels + cond_channels, image_channels, block_out_channels,
                           layers_per_block, attention)
        return cls(unet, cond_channels)

    def config(self) -> dict:
        return {**unet2d_arguments(self.unet), "cond_channels": self.cond_channels}

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self.cond_channels:
            if cond is None:
                raise ConditionError(f"the {self.type_name} denoiser needs a condition with {self.cond_channels} "
                                     "channels, got none")
            x_t = torch.cat([x_t, cond.to(x_t.dtype).expand(x_t.shape[0], -1, -1, -1)], dim=1)
        return self.unet(x_t, t).sample

    def save_weights(self, folder: Path) -> None:
        self.unet.save_pretrained(Path(folder) / UNET_FOLDER, safe_serialization=True)

    @classmethod
    def load_weights(cls, folder: Path, config: dict) -> "ConcatUNetDenoiser":
        # "unet_folder": where a stock diffusers folder keeps its UNet ("." for a bare UNet2DModel folder)
        unet = load_unet(Path(folder) / str(config.get("unet_folder", UNET_FOLDER)), UNet2DModel)
        return cls(unet, int(config.get("cond_channels", 0)))


def make_unet2d(sample_size: int, in_channels: int, out_channels: int, block_out_channels, layers_per_block: int,
                attention: bool, **extra: Any) -> UNet2DModel:
    """The UNet2DModel of the built-in denoisers; ``extra``: more UNet2DModel arguments (a class embedding)."""
    depth = len(block_out_channels)
    down = ["DownBlock2D"] * depth
    up = ["UpBlock2D"] * depth
    if attention:  # attention at the lowest resolution only: cheap at 32x32
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=out_channels,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        down_block_types=tuple(down),
        up_block_types=tuple(up),
        norm_num_groups=min(8, min(block_out_channels)),
        **extra,
    )


def unet2d_arguments(unet: UNet2DModel) -> dict:
    """The ``make_unet2d`` arguments a UNet2DModel was built with, JSON-ready (the image-size part of config())."""
    cfg = unet.config
    return {
        "sample_size": int(cfg.sample_size),
        "image_channels": int(cfg.out_channels),
        "block_out_channels": [int(c) for c in cfg.block_out_channels],
        "layers_per_block": int(cfg.layers_per_block),
        "attention": "AttnDownBlock2D" in cfg.down_block_types,
    }


def save_unet_and_module(folder: Path, unet: torch.nn.Module, module: torch.nn.Module, filename: str) -> None:
    """A diffusers UNet in ``folder/unet`` and the module that turns conditions into its input in ``folder/filename``
    (the layout of the embedding and cross-attention denoisers)."""
    from safetensors.torch import save_file

    unet.save_pretrained(Path(folder) / UNET_FOLDER, safe_serialization=True)
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, Path(folder) / filename)


def load_unet_and_module(folder: Path, unet_class, filename: str, type_name: str) -> tuple[Any, dict]:
    """What :func:`save_unet_and_module` wrote: the UNet and the module's state dict, safetensors only."""
    from safetensors.torch import load_file

    folder = Path(folder)
    unet = load_unet(folder / UNET_FOLDER, unet_class)
    if not (folder / filename).is_file():
        raise CheckpointError(f"{str(folder)!r} has no {filename}: it is not a {type_name} model")
    return unet, load_file(folder / filename)


def load_unet(component: Path, unet_class):
    """A diffusers UNet folder, its weights checked to be safetensors first: diffusers never reaches a pickle."""
    safetensors_weights(component, DIFFUSERS_WEIGHTS, CheckpointError)
    read_json_object(component / "config.json", CheckpointError)
    return unet_class.from_pretrained(component, use_safetensors=True)
