"""The two interfaces every modality plugin implements: Modality (input -> condition) and Denoiser (the network).

A plugin registers a Modality under a name. The modality turns raw user input into a condition
tensor (validating it), says what "no condition" looks like (condition dropout during training, the
model's own baseline at sampling) and which registered denoiser architecture it trains.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch


class Denoiser(torch.nn.Module, ABC):
    """A noise-prediction network ``forward(x_t, t, cond) -> output`` in its checkpoint's parameterisation.

    ``cond`` is a batch of condition tensors from ``Modality.prepare`` (``None`` for an unconditional prior).
    Subclasses are registered through the ``register_denoisers`` hook under ``type_name``.
    """

    type_name: ClassVar[str]
    sample_size: int
    image_channels: int
    # the resolution it reads conditions at: its own sample size, or the decoded image's (a latent model's ControlNet)
    condition_size: ClassVar[Literal["sample", "image"]] = "sample"

    @abstractmethod
    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor: ...

    @abstractmethod
    def config(self) -> dict:
        """JSON-ready arguments that ``build(**config)`` turns back into the same architecture."""

    @classmethod
    @abstractmethod
    def build(cls, **config: Any) -> "Denoiser":
        """A freshly initialised network."""

    @abstractmethod
    def save_weights(self, folder: Path) -> None:
        """Write the weights under ``folder`` as safetensors (diffusers ``save_pretrained`` where possible)."""

    @classmethod
    @abstractmethod
    def load_weights(cls, folder: Path, config: dict) -> "Denoiser":
        """Read what ``save_weights`` wrote; safetensors only."""


class Modality(ABC):
    """One input modality: validation and encoding of user input, and the denoiser it conditions."""

    name: ClassVar[str]
    denoiser_type: ClassVar[str]
    summary: ClassVar[str] = ""

    @abstractmethod
    def prepare(self, raw: Any, *, size: int) -> torch.Tensor:
        """Validate and encode one raw input (a path, PIL image, array, string, ...) into a condition tensor.

        Raises ConditionError naming the input and what was expected.
        """

    def null_condition(self, condition: torch.Tensor) -> torch.Tensor:
        """The "no condition" input of the same shape: used for condition dropout and the model's own baseline."""
        return torch.zeros_like(condition)

    def weight_map(self, condition: torch.Tensor) -> torch.Tensor | None:
        """Optional per-pixel weight (H, W) in [0, 1] for the combiner: where this condition speaks."""
        return None

    @abstractmethod
    def denoiser_config(self, *, sample_size: int, image_channels: int) -> dict:
        """Arguments for ``build`` of this modality's default denoiser architecture (training a new model)."""

    def condition_from_sample(self, sample: Any, rng: Any) -> Any:
        """The raw input this modality reads from a training sample (an ``mcdm.data`` FaceSample).

        ``rng`` (a numpy Generator) drives augmentation such as partial inputs. ``prepare`` encodes the result.
        """
        raise NotImplementedError(f"modality {self.name!r} does not train on face samples")
