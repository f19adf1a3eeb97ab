"""The ``sd_unet`` and ``sd_controlnet`` denoisers: a shared SD-family UNet, read with a prompt or a ControlNet.

Folder layout (an mcdm model folder; :mod:`mcdm_diffusers.folders` writes one from a diffusers pipeline folder)::

    mcdm.json               {"denoiser": "sd_unet" | "sd_controlnet", "space": "latent", "vae": "vae", ...}
    scheduler_config.json   the pipeline's scheduler/scheduler_config.json
    unet/ text_encoder/ tokenizer/ vae/     the pipeline's components
    controlnet/             sd_controlnet only: a ControlNetModel

``denoiser_config``: ``dtype`` (fp32, fp16, bf16: the weights' and the VAE decode's), ``offload`` (weights stay
in host memory, each network visits the device for its call), and for a ControlNet ``control`` (edges, palette),
``conditioning_scale`` and ``palette``. The ControlNet term reads the empty prompt: its difference from the prior
is the control alone, and a prompt speaks through the ``prompt`` modality's term.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from mcdm.errors import CheckpointError, ConfigError
from mcdm.modality import Denoiser
from mcdm.readers import DIFFUSERS_WEIGHTS, read_json_object, safetensors_weights
from mcdm_diffusers.backbone import DTYPES, Backbone, Entry, shared_backbone
from mcdm_diffusers.control import CONTROLS, check_palette, control_image, default_palette

NOT_TRAINED = "mcdm does not train Stable Diffusion-family models; write a model folder with mcdm-diffusers-import"


class SDUNetDenoiser(Denoiser):
    type_name = "sd_unet"

    def __init__(self, backbone: Backbone, settings: dict):
        super().__init__()
        self.backbone = backbone
        self.settings = dict(settings)
        self.sample_size = int(backbone.unet.config.sample_size)
        self.image_channels = int(backbone.unet.config.out_channels)

    @property
    def batch_key(self) -> Backbone:
        """Denoisers on one backbone are evaluated in one batched call (mcdm.grouped)."""
        return self.backbone

    def entry(self, cond: torch.Tensor | None) -> Entry:
        return Entry(prompt=cond)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self.backbone.eps(x_t, t, [self.entry(cond)])[0]

    def forward_group(self, x_t: torch.Tensor, t: torch.Tensor, calls: list[tuple["SDUNetDenoiser", Any]]):
        return self.backbone.eps(x_t, t, [denoiser.entry(cond) for denoiser, cond in calls])

    def _apply(self, fn, recurse=True):
        # CPU offload: the weights stay in host memory wherever the composer moves the model (Backbone.visiting)
        return self if self.backbone.offload else super()._apply(fn, recurse)

    def config(self) -> dict:
        return dict(self.settings)

    @classmethod
    def build(cls, **config: Any) -> "SDUNetDenoiser":
        raise ConfigError(NOT_TRAINED)

    def save_weights(self, folder: Path) -> None:
        raise ConfigError(NOT_TRAINED)

    @classmethod
    def load_weights(cls, folder: Path, config: dict) -> "SDUNetDenoiser":
        dtype, offload = _common_settings(folder, config)
        return cls(shared_backbone(Path(folder), dtype, offload), config)


class SDControlNetDenoiser(SDUNetDenoiser):
    type_name = "sd_controlnet"
    condition_size = "image"  # a ControlNet reads its control image at the decoded image's resolution

    def __init__(self, backbone: Backbone, controlnet: torch.nn.Module, settings: dict):
        super().__init__(backbone, settings)
        self.controlnet = controlnet
        self.control = settings.get("control", "edges")
        self.scale = float(settings.get("conditioning_scale", 1.0))
        self.palette = settings.get("palette") or (default_palette() if self.control == "palette" else None)

    def entry(self, cond: torch.Tensor | None) -> Entry:
        return Entry(controlnet=self.controlnet, image=control_image(self.control, cond, self.palette),
                     scale=self.scale)

    @classmethod
    def load_weights(cls, folder: Path, config: dict) -> "SDControlNetDenoiser":
        from diffusers import ControlNetModel

        folder = Path(folder)
        dtype, offload = _common_settings(folder, config)
        where = str(folder / "mcdm.json")
        if config.get("control", "edges") not in CONTROLS:
            raise CheckpointError(f"{where}: key 'control' must be one of {', '.join(CONTROLS)}, "
                                  f"got {config.get('control')!r}")
        scale = config.get("conditioning_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise CheckpointError(f"{where}: key 'conditioning_scale' must be a finite number, got {scale!r}")
        if config.get("palette") is not None:
            check_palette(config["palette"], where)
        backbone = shared_backbone(folder, dtype, offload)
        safetensors_weights(folder / "controlnet", DIFFUSERS_WEIGHTS, CheckpointError)
        read_json_object(folder / "controlnet" / "config.json", CheckpointError)
        controlnet = ControlNetModel.from_pretrained(folder / "controlnet", use_safetensors=True,
                                                     torch_dtype=DTYPES[dtype])
        if controlnet.config.cross_attention_dim != backbone.unet.config.cross_attention_dim:
            raise CheckpointError(f"{str(folder / 'controlnet')!r} cross-attends to {controlnet.config.cross_attention_dim}"
                                  f"-wide states, its UNet to {backbone.unet.config.cross_attention_dim}")
        return cls(backbone, controlnet.eval().requires_grad_(False), config)


def _common_settings(folder: Path, config: dict) -> tuple[str, bool]:
    dtype, offload = config.get("dtype", "fp32"), config.get("offload", False)
    where = str(Path(folder) / "mcdm.json")
    if dtype not in DTYPES:
        raise CheckpointError(f"{where}: key 'dtype' must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if not isinstance(offload, bool):
        raise CheckpointError(f"{where}: key 'offload' must be true or false, got {offload!r}")
    return dtype, offload
