"""The ``text`` modality: a caption, tokenized for the frozen CLIP text tower of the ``unet_text`` denoiser."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from mcdm.errors import ConditionError
from mcdm.modality import InputKind, InputSpec, Modality
from mcdm_text.clip import TINY_CLIP_CONFIG
from mcdm_text.denoiser import DENOISER_TYPE
from mcdm_text.tokens import CONTEXT_LENGTH, null_tokens, tokenize

CLIP_PATH_ENV = "MCDM_TEXT_CLIP"
"""Environment variable naming the trained CLIP folder that new text denoisers take their frozen text tower from."""
PARTIAL_CAPTION_PROBABILITY = 0.3
"""How often a training caption states only some attributes (so partial captions are in-distribution)."""


class TextModality(Modality):
    name = "text"
    denoiser_type = DENOISER_TYPE
    face_part = "caption"
    # captions in the wording the synthetic faces' captions use (mcdm.data.captions), so the model knows them
    input_spec = InputSpec(InputKind.TEXT, examples=(
        "This woman has blond hair and wears eyeglasses.",
        "A person has red hair. The person is smiling. The person does not wear a hat.",
        "The person has black hair and has no beard. The person wears a hat.",
        "This person wears eyeglasses and is smiling.",
    ))

    def __init__(self, context_length: int = CONTEXT_LENGTH, clip_path: str | None = None):
        self.context_length = context_length
        self.clip_path = clip_path

    def prepare(self, raw: Any, *, size: int) -> torch.Tensor:
        """A caption string -> LongTensor ``(context_length,)`` of token ids. ``size`` is not used by text."""
        return tokenize(raw, self.context_length)

    def null_condition(self, condition: torch.Tensor) -> torch.Tensor:
        """The tokens of the empty caption ``""``, broadcast to ``condition``'s shape (and device)."""
        null = null_tokens(self.context_length).to(condition.device)
        if condition.shape[-1] != null.shape[-1]:
            raise ConditionError(
                f"text: expected token ids of length {null.shape[-1]}, got shape {tuple(condition.shape)}"
            )
        return null.expand(condition.shape).clone()

    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        """A ~1.7 M parameter UNet2DConditionModel, cross-attention at the two lower resolutions.

        The frozen text tower comes from the CLIP folder given to the constructor, else ``$MCDM_TEXT_CLIP``;
        with neither, a random text tower of the default CLIP architecture (fine for tests, not for training).
        """
        clip_path = self.clip_path or os.environ.get(CLIP_PATH_ENV) or None
        config: dict[str, Any] = {
            "sample_size": sample_size,
            "image_channels": image_channels,
            "block_out_channels": [32, 64, 64],
            "layers_per_block": 1,
            "attention_head_dim": 4,
            "clip_path": clip_path,
        }
        if clip_path is None:
            config["text_cfg"] = {**TINY_CLIP_CONFIG["text_cfg"], "context_length": self.context_length}
        return config

    def caption_scorer(self, composition: Path):
        """The CLIP score (``mcdm_text.clip.ClipScorer``) of the composition's ``clip/`` folder, if it ships one."""
        from mcdm_text.clip import ClipScorer

        folder = Path(composition) / "clip"
        return ClipScorer.load(folder) if folder.is_dir() else None

    def condition_from_sample(self, sample: Any, rng: Any) -> str:
        """One of the sample's captions; with probability 0.3 a caption stating a random subset of attributes."""
        attributes = getattr(sample, "attributes", None)
        if attributes is not None and rng.random() < PARTIAL_CAPTION_PROBABILITY:
            from mcdm.data.captions import describable, partial_caption

            k = int(rng.integers(1, max(2, len(describable(attributes)))))  # 1 .. all but one
            return partial_caption(attributes, rng, k)
        captions = list(getattr(sample, "captions", None) or [])
        if not captions:
            raise ConditionError(f"text: training sample {getattr(sample, 'name', '') or '?'!r} has no captions")
        return captions[int(rng.integers(len(captions)))]
