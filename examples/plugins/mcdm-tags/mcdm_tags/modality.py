"""Attribute tags: a short token sequence (``"female, eyeglasses, hat"``) read by cross-attention.

``prepare`` returns ``(CONTEXT_LENGTH,)`` int64 token ids: START, one id per tag in the order given, then PAD.
Each tag only says what is there; a tag left out says nothing. The null condition is all PAD (no START), which no
real tag list gives, so "no tags" is never a real input.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from mcdm.errors import ConditionError
from mcdm.modality import InputKind, InputSpec, Modality
from mcdm_tags import DENOISER_TYPE

TAGS = ("female", "male", "eyeglasses", "hat", "beard", "smiling", "bangs", "earrings", "necklace")
PAD, START = 0, 1
VOCAB = {tag: i + 2 for i, tag in enumerate(TAGS)}
CONTEXT_LENGTH = 1 + 8  # START and at most 8 tags (a gender and the seven other attributes)
PARTIAL_PROBABILITY = 0.3
"""How often a training sample's tags are a random subset (so partial tag lists are in-distribution)."""


class TagsModality(Modality):
    name = "tags"
    denoiser_type = DENOISER_TYPE
    input_spec = InputSpec(InputKind.TEXT, examples=("female, eyeglasses", "male, beard, hat", "smiling, bangs"))

    def prepare(self, raw: Any, *, size: int) -> torch.Tensor:
        """Tags (a comma- or space-separated string, or a list of strings) -> (CONTEXT_LENGTH,) int64 ids."""
        tags = _split(raw)
        unknown = [t for t in tags if t not in VOCAB]
        if unknown:
            raise ConditionError(f"tags: unknown tag {unknown[0]!r}; known: {', '.join(TAGS)}")
        if len(set(tags)) != len(tags):
            raise ConditionError(f"tags: a tag is given twice in {raw!r}")
        if not tags or len(tags) > CONTEXT_LENGTH - 1:
            raise ConditionError(f"tags: expected 1 to {CONTEXT_LENGTH - 1} tags (leave the modality out for none), "
                                 f"got {len(tags)}")
        ids = [START] + [VOCAB[t] for t in tags]
        return torch.tensor(ids + [PAD] * (CONTEXT_LENGTH - len(ids)))

    def null_condition(self, condition: torch.Tensor) -> torch.Tensor:
        """All PAD: no START token, unlike every real tag list."""
        return torch.full_like(condition, PAD)

    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        return {"sample_size": sample_size, "image_channels": image_channels, "vocab_size": len(VOCAB) + 2,
                "context_length": CONTEXT_LENGTH, "width": 32, "block_out_channels": (32, 64, 64),
                "layers_per_block": 1, "attention_head_dim": 4}

    def condition_from_sample(self, sample, rng) -> list[str]:
        """The face's tags in random order (order carries no meaning); sometimes a random non-empty subset."""
        a = sample.attributes
        tags = [a.gender] + [t for t in TAGS[2:] if getattr(a, t)]
        tags = [tags[i] for i in rng.permutation(len(tags))]
        if len(tags) > 1 and rng.random() < PARTIAL_PROBABILITY:
            tags = tags[: int(rng.integers(1, len(tags)))]
        return tags


def _split(raw: Any) -> list[str]:
    if isinstance(raw, str):
        return [t for t in re.split(r"[,\s]+", raw.strip().lower()) if t]
    if isinstance(raw, (list, tuple)) and all(isinstance(t, str) for t in raw):
        return [t.strip().lower() for t in raw]
    raise ConditionError(f"tags: expected a string such as 'female, eyeglasses' or a list of tags, got {raw!r}")
