"""The ``prompt`` modality: a text prompt as UTF-8 bytes, tokenized by the model folder's own tokenizer.

The modality does not know which tokenizer will read the prompt (each SD-family folder brings its own), so its
condition is the prompt's bytes, zero-padded to ``MAX_PROMPT_BYTES``; all zeros is the empty prompt, the null
condition. The ``sd_unet`` denoiser decodes and tokenizes them.
"""

from __future__ import annotations

from typing import Any

import torch

from mcdm.errors import ConditionError, ConfigError
from mcdm.modality import Modality

MAX_PROMPT_BYTES = 1024  # CLIP reads 77 tokens; a prompt of 1 KiB is far past that


class PromptModality(Modality):
    name = "prompt"
    denoiser_type = "sd_unet"

    def prepare(self, raw: Any, *, size: int) -> torch.Tensor:
        """A string -> uint8 tensor (MAX_PROMPT_BYTES,). ``size`` is not used by text."""
        if not isinstance(raw, str):
            raise ConditionError(f"prompt: expected a string, got {type(raw).__name__}")
        data = raw.strip().encode("utf-8")
        if b"\0" in data:
            raise ConditionError("prompt: contains a NUL character")
        if len(data) > MAX_PROMPT_BYTES:
            raise ConditionError(f"prompt: {len(data)} bytes of UTF-8, at most {MAX_PROMPT_BYTES}")
        return torch.tensor(list(data.ljust(MAX_PROMPT_BYTES, b"\0")), dtype=torch.uint8)

    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        raise ConfigError("prompt: mcdm does not train Stable Diffusion-family models; write a model folder for "
                          "an existing one with mcdm-diffusers-import")


def decode_prompt(condition: torch.Tensor) -> str:
    """The prompt a condition row (MAX_PROMPT_BYTES,) holds ("" for the null condition)."""
    return bytes(condition.to("cpu", torch.uint8).tolist()).rstrip(b"\0").decode("utf-8")
