"""A small CLIP built with open_clip's own classes from a config dict (never from the hub), and its files.

A CLIP folder holds ``clip_config.json`` (open_clip's model config: ``embed_dim``, ``vision_cfg``,
``text_cfg``) and ``model.safetensors``. The diffusion model only uses the text tower; it is saved on
its own as a *text encoder folder*: ``config.json`` (``{"text_cfg": ...}``) and ``model.safetensors``.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from mcdm.atomic import atomic_folder
from mcdm.errors import CheckpointError, ConfigError
from mcdm.pixels import to_model_range
from mcdm.readers import read_weights_folder
from mcdm_text.tokens import CONTEXT_LENGTH, VOCAB_SIZE

CLIP_CONFIG = "clip_config.json"
TRAINING_RECORD = "trainer.json"
WEIGHTS = "model.safetensors"
TEXT_CONFIG = "config.json"

TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 32, "patch_size": 4, "width": 128, "layers": 2, "head_width": 32},
    "text_cfg": {"context_length": CONTEXT_LENGTH, "vocab_size": VOCAB_SIZE, "width": 128, "heads": 4, "layers": 2},
}
"""The default CLIP: a 2-layer ViT on 4x4 patches of 32x32 images and a 2-layer, 128-wide text transformer."""


def clip_config(image_size: int = 32, **overrides: Any) -> dict:
    """The default config with the vision tower sized for ``image_size`` and top-level keys replaced."""
    config = copy.deepcopy(TINY_CLIP_CONFIG)
    config["vision_cfg"]["image_size"] = image_size
    config["vision_cfg"]["patch_size"] = max(1, image_size // 8)
    config.update(copy.deepcopy(overrides))
    return config


def build_clip(config: dict):
    """A freshly initialised ``open_clip.CustomTextCLIP`` (the text tower is ``model.text``) from a config dict."""
    from open_clip import CustomTextCLIP

    _check_clip_config(config)
    return CustomTextCLIP(
        embed_dim=int(config["embed_dim"]),
        vision_cfg=dict(config["vision_cfg"]),
        text_cfg=dict(config["text_cfg"]),
        quick_gelu=bool(config.get("quick_gelu", False)),
    )


def build_text_encoder(text_cfg: dict, embed_dim: int = 0):
    """An open_clip ``TextTransformer`` that also returns its per-token states (after ``ln_final``).

    ``embed_dim`` only sizes the pooled projection, which the diffusion model never uses; 0 leaves it out
    (a CLIP's projection weights are then skipped on load).
    """
    from open_clip.model import _build_text_tower

    cfg = {**text_cfg, "output_tokens": True}
    if not embed_dim:
        cfg["proj_type"] = "none"
    return _build_text_tower(embed_dim, cfg)


def save_clip(model, config: dict, folder: str | os.PathLike, *, training: dict | None = None) -> Path:
    """Write a CLIP folder atomically: ``clip_config.json`` + ``model.safetensors``, and ``trainer.json`` when
    given ``training`` (the step and settings it was trained with, which its model card is written from)."""
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        save_file(_state_dict(model), tmp / WEIGHTS)
        (tmp / CLIP_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        if training is not None:
            (tmp / TRAINING_RECORD).write_text(json.dumps(training, indent=2) + "\n")
    return folder


def read_clip_config(folder: str | os.PathLike) -> dict:
    """A CLIP folder's ``clip_config.json`` alone (its weights unread)."""
    return read_weights_folder(folder, CLIP_CONFIG, (), what="CLIP")[0]


def read_clip(folder: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """A CLIP folder's config and weights (:func:`mcdm.readers.read_weights_folder`)."""
    config, weights = read_weights_folder(folder, CLIP_CONFIG, (WEIGHTS,), what="CLIP")
    return config, weights[WEIGHTS]


def load_clip(folder: str | os.PathLike) -> tuple[Any, dict]:
    """Read what :func:`save_clip` wrote: ``(model, config)``; the model in eval mode. Safetensors only."""
    folder = Path(folder)
    config, weights = read_clip(folder)
    model = build_clip(config)
    _load_into(model, weights, folder, strict=True)
    return model.eval(), config


def load_clip_text_encoder(folder: str | os.PathLike):
    """Only the text tower of the CLIP in ``folder`` (as :func:`build_text_encoder` makes it), frozen."""
    folder = Path(folder)
    config, weights = read_clip(folder)
    encoder = build_text_encoder(config["text_cfg"])
    weights = {k[len("text."):]: v for k, v in weights.items() if k.startswith("text.")}
    weights = {k: v for k, v in weights.items() if not k.startswith("text_projection")}
    _load_into(encoder, weights, folder, strict=True)
    return freeze(encoder)


def save_text_encoder(encoder, text_cfg: dict, folder: str | os.PathLike) -> None:
    """Write a text encoder folder (not atomic by itself: it is written inside an atomic model folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(_state_dict(encoder), folder / WEIGHTS)
    (folder / TEXT_CONFIG).write_text(json.dumps({"text_cfg": text_cfg}, indent=2) + "\n")


def load_text_encoder(folder: str | os.PathLike) -> tuple[Any, dict]:
    """Read what :func:`save_text_encoder` wrote: ``(frozen encoder, text_cfg)``."""
    folder = Path(folder)
    config, weights = read_weights_folder(folder, TEXT_CONFIG, (WEIGHTS,), what="text encoder")
    text_cfg = config.get("text_cfg")
    if not isinstance(text_cfg, dict):
        raise CheckpointError(f"{str(folder / TEXT_CONFIG)!r} has no 'text_cfg' object")
    encoder = build_text_encoder(text_cfg)
    _load_into(encoder, weights[WEIGHTS], folder, strict=True)
    return freeze(encoder), text_cfg


def freeze(module):
    """Eval mode, no gradients: the text encoder is never trained with the UNet."""
    module.eval()
    module.requires_grad_(False)
    return module


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())


def images_to_tensor(images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """uint8 images ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` in [-1, 1], the CLIP's input."""
    array = np.stack(images) if isinstance(images, list) else np.asarray(images)
    return to_model_range(array)


# --- helpers ------------------------------------------------------------------------------------


def _check_clip_config(config: dict) -> None:
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in config]
    if missing:
        raise ConfigError(f"CLIP config lacks {', '.join(missing)}; expected open_clip's model config keys")
    if int(config["text_cfg"].get("vocab_size", VOCAB_SIZE)) < VOCAB_SIZE:
        raise ConfigError(f"CLIP text_cfg.vocab_size must be at least {VOCAB_SIZE} (open_clip's tokenizer)")


def _state_dict(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _load_into(module, weights: dict[str, torch.Tensor], folder: Path, *, strict: bool) -> None:
    try:
        module.load_state_dict(weights, strict=strict)
    except RuntimeError as exc:
        raise CheckpointError(f"the weights in {str(folder)!r} do not fit their config: {exc}") from exc


class ClipScorer:
    """CLIP score of images against captions: ``100 * cos(image embedding, caption embedding)``, per image."""

    def __init__(self, model, context_length: int):
        self.model, self.context_length = model.eval(), context_length

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "ClipScorer":
        model, config = load_clip(folder)
        return cls(model, int(config["text_cfg"]["context_length"]))

    @torch.no_grad()
    def __call__(self, images: np.ndarray, captions: list[str]) -> np.ndarray:
        """uint8 images ``(N, H, W, 3)`` at the CLIP's image size and N captions -> N scores."""
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} captions")
        image_features = self.model.encode_image(images_to_tensor(images), normalize=True)
        return (100.0 * (image_features * self.caption_embeddings(captions)).sum(dim=-1)).numpy()

    @torch.no_grad()
    def caption_embeddings(self, captions: list[str]) -> torch.Tensor:
        """N captions -> their unit-length CLIP text embeddings ``(N, embed_dim)``."""
        from mcdm_text.tokens import tokenize_batch

        return self.model.encode_text(tokenize_batch(list(captions), self.context_length), normalize=True)
