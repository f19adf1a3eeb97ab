"""The two interfaces every modality plugin implements: Modality (input -> condition) and Denoiser (the network).

A plugin registers a Modality under a name. The modality turns raw user input into a condition
tensor (validating it), says what "no condition" looks like (condition dropout during training, the
model's own baseline at sampling) and which registered denoiser architecture it trains. Its ``input_spec``
says how a person gives that input in ``mcdm serve``'s page (a canvas, a label-map painter, a text box, a
choice list), so an installed plugin gets its own input component without a change to mcdm.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Sequence

import torch

from mcdm.errors import ConditionError


def broadcast_condition(condition: torch.Tensor, batch: int, what: str) -> torch.Tensor:
    """A condition's batch made the sample's: one condition (batch 1) is shared by every image, else there must
    be one per image (the Denoiser contract); ``what`` names them in the error ("captions", ...)."""
    if condition.shape[0] == 1:
        return condition.expand(batch, *condition.shape[1:])
    if condition.shape[0] != batch:
        raise ConditionError(f"{condition.shape[0]} {what} for a batch of {batch} images")
    return condition


class Denoiser(torch.nn.Module, ABC):
    """A noise-prediction network ``forward(x_t, t, cond) -> output``: the contract every denoiser type keeps.

    Registered through the ``register_denoisers`` hook under ``type_name``. ``mcdm.testing.ModalityConformance``
    checks every point below; ``ConcatUNetDenoiser`` (``mcdm.unet_denoiser``, image-like conditions concatenated
    to ``x_t``), ``EmbeddingUNetDenoiser`` (``mcdm.embedding_denoiser``, a class label or a vector through an
    embedding) and ``CrossAttentionDenoiser`` (``mcdm.cross_attention_denoiser``, a token sequence read by
    cross-attention) keep it already: subclass one of them where the condition is of its kind.

    - Instance attributes: ``sample_size`` and ``image_channels`` (the ``x_t`` it denoises) are set on the
      instance by ``__init__``, from the network itself, so ``build`` and ``load_weights`` both set them.
      ``condition_size`` (class attribute): the resolution ``Modality.prepare`` is asked for, ``"sample"`` (its
      own) or ``"image"`` (the decoded image's, for a latent model reading a full-size control image).
    - ``x_t``: ``(B, image_channels, sample_size, sample_size)``, float32 (or bf16/fp16 under autocast).
    - ``t``: a 0-dim tensor while sampling (one timestep for the whole batch; Euler's may be fractional) or a
      ``(B,)`` integer tensor while training; both must give the same output for the same timesteps.
    - ``cond``: ``(B, *shape)`` or ``(1, *shape)`` stacked from ``prepare``'s tensors, in ``prepare``'s dtype
      (long for labels and tokens); a batch of 1 is shared by all B images and must be broadcast. ``None`` only
      for an unconditional prior.
    - Output: ``(B, image_channels, sample_size, sample_size)`` in the parameterisation the model was trained
      in (``mcdm train``'s ``prediction``, stored as ``prediction_type`` in ``mcdm.json``); the engine converts
      it to eps, so a denoiser never converts.
    - ``config()`` vs ``build()``: ``build(**arguments)`` makes a freshly initialised network from the
      modality's ``denoiser_config`` merged with the training configuration's ``denoiser:`` overrides;
      ``config()`` returns JSON-ready arguments from which ``build(**config())`` makes the same architecture.
      It is what ``mcdm.json`` stores as ``denoiser_config`` and what ``load_weights`` receives back.
    - ``save_weights(folder)`` / ``load_weights(folder, config)``: safetensors (and JSON) only.
    - Optional, for denoisers that share one network (``mcdm.grouped``): ``batch_key``, the same object for all
      that share it, and ``forward_group(x_t, t, calls)`` giving one output per ``(denoiser, cond)`` call, as
      separate ``forward`` calls would.
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


class InputKind(str, Enum):
    """The input component ``mcdm serve`` gives a modality, and the raw value ``prepare`` then receives.

    The page saves drawings as PNG files and hands ``prepare`` their paths, as ``mcdm generate --cond`` does.
    """

    IMAGE = "image"  # a canvas to draw and erase black strokes on white, or upload to: an RGB PNG
    LABEL_MAP = "label_map"  # a painter with the labels' colours and an "unknown" brush: an 8-bit id map PNG
    TEXT = "text"  # a text box: the string
    CHOICE = "choice"  # a list of ``choices``: the chosen string


@dataclass(frozen=True)
class Label:
    """One brush of a label-map painter: the id ``prepare`` reads, the name shown, the colour painted."""

    id: int
    name: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class InputSpec:
    """How a person gives a modality's input in the page.

    ``examples``: values one click away (captions for TEXT). ``labels`` and ``unknown`` (LABEL_MAP): the
    painter's brushes and the id of pixels nobody painted or painted "unknown". ``choices`` (CHOICE): the list.
    IMAGE and LABEL_MAP inputs also take a file, which ``prepare`` reads as ``mcdm generate --cond NAME=FILE``
    does (a modality without an ``input_spec`` gets only that).
    """

    kind: InputKind
    examples: tuple[str, ...] = ()
    labels: tuple[Label, ...] = ()
    unknown: int | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind is InputKind.LABEL_MAP and (not self.labels or self.unknown is None):
            raise ValueError("a LABEL_MAP input needs labels and the id of unknown pixels")
        if self.kind is InputKind.CHOICE and not self.choices:
            raise ValueError("a CHOICE input needs choices")
        ids = [label.id for label in self.labels]
        if len(set(ids)) != len(ids) or self.unknown in ids:
            raise ValueError(f"label ids must be distinct and differ from unknown ({self.unknown}), got {ids}")


class Modality(ABC):
    """One input modality: validation and encoding of user input, and the denoiser it conditions."""

    name: ClassVar[str]
    denoiser_type: ClassVar[str]
    input_spec: ClassVar[InputSpec | None] = None
    """The page's input component (see InputSpec); None: a file upload only, read by ``prepare``."""
    face_part: ClassVar[str | None] = None
    """The part of a synthetic face (``mcdm.data`` FaceSample) this modality's input is: ``"sketch"``, ``"mask"`` or
    ``"caption"``. ``mcdm eval`` gives it that part of each held-out face, whole or partial (``mcdm.eval.inputs``),
    and the figure that part is scored by is the one it controls. None: the evaluation reads the face through
    ``condition_from_sample`` and scores no figure for it."""
    combines: ClassVar[tuple[str, ...]] = ()
    """Modalities whose inputs this one takes together, as one mapping ``{name: input}`` (the joint oracle):
    ``mcdm eval`` gives it each one's input and credits it with each one's figure."""

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

    def caption_scorer(self, composition: Path) -> Callable[[Any, Sequence[str]], Any] | None:
        """A scorer of uint8 images (N, H, W, 3) against N captions, one score per image, made from the files the
        composition folder ships (the text plugin: its CLIP in ``clip/``): the evaluation's CLIP-score column.
        None, the default: this modality scores no captions."""
        return None

    def condition_from_sample(self, sample: Any, rng: Any) -> Any:
        """The raw input this modality reads from a training sample (an ``mcdm.data`` FaceSample).

        ``rng`` (a numpy Generator) drives augmentation such as partial inputs. ``prepare`` encodes the result.
        """
        raise NotImplementedError(f"modality {self.name!r} does not train on face samples")
