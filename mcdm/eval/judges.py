"""The judges: small networks that read a generated face back into a label map and attributes.

A judge answers "does this 32x32 face obey its condition?" without a human. Two are defined here:

* ``ParsingJudge``: a tiny fully-convolutional UNet that predicts the 19-class CelebAMask-HQ label map of a
  face (``parse``), to score a generated face against its segmentation condition;
* ``AttributeJudge``: a small CNN with one classification head per judged attribute (``predict``), to score a
  face against its caption, whose penultimate activations (``features``) also feed the Fréchet distance.

Both take a batch of uint8 RGB images (``(N, H, W, 3)``, numpy or torch, or a single ``(H, W, 3)`` image) or
a float tensor ``(N, 3, H, W)`` in [-1, 1] (what the samplers produce). A judge folder holds ``config.json``
and ``model.safetensors``, nothing else: judges never load a pickle. ``mcdm train judges`` (``mcdm.eval.train_judges``) trains them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from mcdm.atomic import atomic_folder
from mcdm.checkpoint import checksums_required_by_env, verify_checksums
from mcdm.data.attributes import GENDERS, HAIR_COLORS, FaceAttributes
from mcdm.data.captions import describable
from mcdm.data.labels import LABELS
from mcdm.errors import CheckpointError
from mcdm.pixels import to_model_range
from mcdm.readers import read_weights_folder

__all__ = [
    "ATTRIBUTE_HEADS",
    "AttributeJudge",
    "AttributeNet",
    "Judges",
    "ParsingJudge",
    "ParsingNet",
    "attribute_targets",
    "judge_input",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1
IGNORE_TARGET = -1
"""Target index of an attribute that is not defined for a face (hair colour when bald, beard on a woman)."""

ATTRIBUTE_HEADS: dict[str, tuple[Any, ...]] = {
    "gender": GENDERS,
    "hair_color": HAIR_COLORS,
    "eyeglasses": (False, True),
    "smiling": (False, True),
    "hat": (False, True),
    "beard": (False, True),
}
"""The attributes the attribute judge reads, each with its classes (``FaceAttributes`` values, in order)."""


def attribute_targets(attributes: FaceAttributes, heads: dict[str, Sequence[Any]] = ATTRIBUTE_HEADS) -> dict[str, int]:
    """The class index of each judged attribute, or ``IGNORE_TARGET`` where a caption could not state it.

    Definedness follows ``mcdm.data.captions.describable``: a bald face shows no hair colour, a woman has no
    beard. Those targets are left out of the judge's loss and of its accuracy.
    """
    stated = set(describable(attributes))
    return {
        name: list(classes).index(getattr(attributes, name)) if name in stated else IGNORE_TARGET
        for name, classes in heads.items()
    }


# ---------------------------------------------------------------- input


def judge_input(images: Any, size: int | None = None, name: str = "images") -> torch.Tensor:
    """Bring images to a float32 ``(N, 3, H, W)`` tensor in [-1, 1] (on the CPU unless it was a tensor).

    Accepts uint8 RGB images ``(N, H, W, 3)`` or ``(H, W, 3)`` (numpy, torch, or a list of numpy arrays),
    or a float tensor/array ``(N, 3, H, W)`` or ``(3, H, W)`` already in [-1, 1] (values up to 1.5 outside
    are clipped, as a sampler's output may overshoot; anything further out is an error: a [0, 255] or
    [0, 1]-scaled float image is not guessed at). ``size``, when given, is the required H = W.
    """
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError(f"{name}: got an empty list of images")
        images = np.stack([np.asarray(image) for image in images])
    tensor = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if tensor.dtype == torch.uint8:
        if tensor.ndim == 3:
            tensor = tensor[None]
        if tensor.ndim != 4 or tensor.shape[-1] != 3:
            raise ValueError(f"{name}: uint8 images must be (N, H, W, 3) or (H, W, 3) RGB, got {tuple(tensor.shape)}")
        tensor = to_model_range(tensor)
    elif tensor.is_floating_point():
        if tensor.ndim == 3:
            tensor = tensor[None]
        if tensor.ndim != 4 or tensor.shape[1] != 3:
            raise ValueError(f"{name}: float images must be (N, 3, H, W) in [-1, 1], got {tuple(tensor.shape)}")
        tensor = tensor.float()
        if tensor.numel() and (not torch.isfinite(tensor).all() or tensor.abs().max() > 1.5):
            low, high = float(tensor.min()), float(tensor.max())
            raise ValueError(f"{name}: float images must be in [-1, 1], got values in [{low:.3g}, {high:.3g}]")
        tensor = tensor.clamp(-1.0, 1.0)
    else:
        raise ValueError(f"{name}: expected uint8 images or float images in [-1, 1], got dtype {tensor.dtype}")
    if tensor.shape[0] == 0:
        raise ValueError(f"{name}: got an empty batch")
    if size is not None and tuple(tensor.shape[-2:]) != (size, size):
        h, w = tensor.shape[-2:]
        raise ValueError(f"{name}: this judge reads {size}x{size} images (its training size), got {h}x{w}")
    return tensor.contiguous()


def area_downsample(images: torch.Tensor, size: int, name: str = "images") -> torch.Tensor:
    """Float images ``(N, 3, S, S)`` averaged over (S/size)x(S/size) squares to ``(N, 3, size, size)``: how a
    judge trained at ``size`` reads a larger face. S must be a multiple of ``size``."""
    side = images.shape[-1]
    if images.shape[-2] != side or side % size:
        raise ValueError(f"{name}: this judge reads {size}x{size} images (its training size) or square images of "
                         f"a multiple of that size, averaged down; got {images.shape[-2]}x{side}")
    return images if side == size else torch.nn.functional.avg_pool2d(images, side // size)


# ---------------------------------------------------------------- networks


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ParsingNet(nn.Module):
    """A tiny UNet: three stride-2 stages down, nearest-upsampling with skip connections back up.

    ``channels`` are the widths at full, 1/2, 1/4 and 1/8 resolution; ``(16, 32, 64, 128)`` has 0.44 M
    parameters. Input ``(N, 3, H, W)`` in [-1, 1] with H, W multiples of 8; output ``(N, classes, H, W)``
    logits.
    """

    def __init__(self, channels: Sequence[int] = (16, 32, 64, 128), num_classes: int = len(LABELS)) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.down = nn.ModuleList(
            [
                nn.Sequential(_conv(3, c1), _conv(c1, c1)),
                nn.Sequential(_conv(c1, c2, 2), _conv(c2, c2)),
                nn.Sequential(_conv(c2, c3, 2), _conv(c3, c3)),
                nn.Sequential(_conv(c3, c4, 2), _conv(c4, c4)),
            ]
        )
        self.up = nn.ModuleList([_conv(c4 + c3, c3), _conv(c3 + c2, c2), _conv(c2 + c1, c1)])
        self.head = nn.Conv2d(c1, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        for stage in self.up:
            x = stage(torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skips.pop()], dim=1))
        return self.head(x)


class AttributeNet(nn.Module):
    """A small CNN: four stages (the last three stride 2), global average pooling, one linear head each.

    ``features`` is the pooled ``channels[-1]``-dimensional vector the heads read (the penultimate layer);
    ``forward`` returns ``{attribute: (N, classes) logits}``.
    """

    def __init__(self, channels: Sequence[int] = (24, 48, 96, 128), heads: dict[str, int] | None = None) -> None:
        super().__init__()
        heads = heads if heads is not None else {n: len(c) for n, c in ATTRIBUTE_HEADS.items()}
        c1, c2, c3, c4 = channels
        self.body = nn.Sequential(
            _conv(3, c1), _conv(c1, c1),
            _conv(c1, c2, 2), _conv(c2, c2),
            _conv(c2, c3, 2), _conv(c3, c3),
            _conv(c3, c4, 2), _conv(c4, c4),
        )  # fmt: skip
        self.heads = nn.ModuleDict({name: nn.Linear(c4, n) for name, n in heads.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.features(x)
        return {name: head(features) for name, head in self.heads.items()}


# ---------------------------------------------------------------- judges


class _Judge:
    """What both judges share: a config dict, a network, batching, and the folder format."""

    kind: ClassVar[str]

    def __init__(self, net: nn.Module, config: dict[str, Any]) -> None:
        self.net = net.eval()
        self.config = config
        self.image_size = int(config["image_size"])

    @classmethod
    def build(cls, **config: Any) -> Self:
        """A randomly initialised judge (seed torch first for a reproducible one); keys as in ``config.json``."""
        config = {"judge": cls.kind, "format": FORMAT_VERSION, "image_size": 32, **cls._defaults(), **config}
        return cls(cls._network(config), config)

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        """The config keys of this kind of judge, with their defaults."""
        raise NotImplementedError

    @classmethod
    def _network(cls, config: dict[str, Any]) -> nn.Module:
        """The untrained network that ``config`` describes (checked)."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: str | torch.device) -> Self:
        """Move the network to ``device`` (inputs follow it; results always come back on the CPU)."""
        self.net.to(device)
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def _batches(self, images: Any, batch_size: int) -> Iterator[torch.Tensor]:
        """Batches at the judge's size: images of a multiple of it are averaged down (``area_downsample``)."""
        x = area_downsample(judge_input(images), self.image_size)
        for start in range(0, x.shape[0], batch_size):
            yield x[start : start + batch_size].to(self.device)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``folder`` atomically (replacing an old judge)."""
        folder = Path(folder)
        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        with atomic_folder(folder) as tmp:
            save_file(state, str(tmp / WEIGHTS_FILE), metadata={"judge": self.kind, "format": str(FORMAT_VERSION)})
            (tmp / CONFIG_FILE).write_text(json.dumps(self.config, indent=2) + "\n", encoding="utf-8")
            for path, mode in ((tmp, 0o755), (tmp / WEIGHTS_FILE, 0o644), (tmp / CONFIG_FILE, 0o644)):
                path.chmod(mode)  # readable like any other file (the temporary folder starts private)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> Self:
        """Load a judge saved by ``save``; a missing, foreign or corrupt folder is a ``CheckpointError``."""
        config, state = _read_folder(folder, cls.kind)
        judge = cls.build(**config)
        try:
            judge.net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            message = f"{str(folder)!r}: weights do not match the {cls.kind} judge's config ({first})"
            raise CheckpointError(message) from exc
        return judge.to(device)


def _read_folder(folder: str | os.PathLike[str], kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    config, weights = read_weights_folder(folder, CONFIG_FILE, (WEIGHTS_FILE,), what="judge")
    if config.get("judge") != kind:
        found = config.get("judge")
        raise CheckpointError(f"{str(folder)!r} holds a {found!r} judge, expected a {kind!r} judge")
    if config.get("format") != FORMAT_VERSION:
        found = config.get("format")
        raise CheckpointError(f"{str(folder)!r}: judge format {found!r}, this mcdm reads format {FORMAT_VERSION}")
    return config, weights[WEIGHTS_FILE]


class ParsingJudge(_Judge):
    """Predicts the CelebAMask-HQ label map (``LABELS`` ids) of each face."""

    kind = "parsing"

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        return {"channels": [16, 32, 64, 128], "labels": list(LABELS)}

    @classmethod
    def _network(cls, config: dict[str, Any]) -> nn.Module:
        if list(config["labels"]) != list(LABELS):
            raise CheckpointError("parsing judge: its labels are not mcdm's CelebAMask-HQ LABELS order")
        if config["image_size"] % 8:
            raise ValueError(f"parsing judge: image_size must be a multiple of 8, got {config['image_size']}")
        return ParsingNet(config["channels"], len(config["labels"]))

    @torch.inference_mode()
    def logits(self, images: Any, batch_size: int = 256) -> torch.Tensor:
        """``(N, 19, H, W)`` float32 class logits, on the CPU."""
        return torch.cat([self.net(x).float().cpu() for x in self._batches(images, batch_size)])

    @torch.inference_mode()
    def parse(self, images: Any, batch_size: int = 256) -> np.ndarray:
        """``(N, H, W)`` uint8 label maps of ``LABELS`` ids, one per image (a single image gives N = 1), at the
        images' own size: an image larger than the judge's is parsed averaged down, each label then covering the
        square it was averaged from."""
        images = judge_input(images)
        masks = torch.cat([self.net(x).argmax(dim=1).to(torch.uint8).cpu() for x in self._batches(images, batch_size)])
        factor = images.shape[-1] // self.image_size
        return masks.repeat_interleave(factor, 1).repeat_interleave(factor, 2).numpy()


class AttributeJudge(_Judge):
    """Reads gender, hair colour, eyeglasses, smiling, hat and beard off each face."""

    kind = "attributes"

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        return {"channels": [24, 48, 96, 128], "heads": {name: list(classes) for name, classes in ATTRIBUTE_HEADS.items()}}

    @classmethod
    def _network(cls, config: dict[str, Any]) -> nn.Module:
        return AttributeNet(config["channels"], {name: len(classes) for name, classes in config["heads"].items()})

    @property
    def heads(self) -> dict[str, list[Any]]:
        """``{attribute: classes}``: the order of each head's logits."""
        return self.config["heads"]

    @property
    def feature_dim(self) -> int:
        return int(self.config["channels"][-1])

    @torch.inference_mode()
    def logits(self, images: Any, batch_size: int = 256) -> dict[str, torch.Tensor]:
        """``{attribute: (N, classes) float32 logits}``, on the CPU."""
        parts = [self.net(x) for x in self._batches(images, batch_size)]
        return {name: torch.cat([p[name].float().cpu() for p in parts]) for name in self.heads}

    def predict(self, images: Any, batch_size: int = 256) -> list[dict[str, Any]]:
        """One ``{attribute: value}`` dict per image, values as in ``FaceAttributes`` (``"blond"``, ``True``).

        Every judged attribute gets a value, also where a caption could not state it (the hair colour of a
        bald face, a woman's beard); ``attribute_accuracy`` scores only what the caption states.
        """
        indices = {name: logits.argmax(dim=1).tolist() for name, logits in self.logits(images, batch_size).items()}
        n = len(next(iter(indices.values())))
        return [{name: self.heads[name][indices[name][i]] for name in self.heads} for i in range(n)]

    @torch.inference_mode()
    def features(self, images: Any, batch_size: int = 256) -> np.ndarray:
        """``(N, feature_dim)`` float32 penultimate features (the pooled vector the heads read)."""
        return torch.cat([self.net.features(x).float().cpu() for x in self._batches(images, batch_size)]).numpy()


@dataclass(frozen=True)
class Judges:
    """Both judges, as shipped together: ``folder/parsing`` and ``folder/attributes``."""

    parsing: ParsingJudge
    attributes: AttributeJudge

    PARSING_FOLDER: ClassVar[str] = "parsing"
    ATTRIBUTES_FOLDER: ClassVar[str] = "attributes"

    @classmethod
    def load(cls, folder: str | os.PathLike[str], device: str | torch.device = "cpu", *,
             require_checksums: bool = False) -> "Judges":
        """Load ``folder/parsing`` and ``folder/attributes`` (e.g. ``pretrained/judges-32``).

        Checked against the folder's SHA256SUMS; without a complete one, a warning, or an error when
        ``require_checksums`` (as for judges found by name).
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise CheckpointError(f"judges folder {str(folder)!r} does not exist")
        verify_checksums(folder, required=require_checksums or checksums_required_by_env())
        return cls(
            parsing=ParsingJudge.load(folder / cls.PARSING_FOLDER, device),
            attributes=AttributeJudge.load(folder / cls.ATTRIBUTES_FOLDER, device),
        )

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write both judges under ``folder`` (each folder atomically)."""
        folder = Path(folder)
        self.parsing.save(folder / self.PARSING_FOLDER)
        self.attributes.save(folder / self.ATTRIBUTES_FOLDER)
        return folder
