"""Face data for mcdm: the built-in ``synthfaces`` dataset and readers for real face datasets.

The names below are imported on first use, so ``import mcdm.data.cli`` (and ``mcdm --help``) stays free of
numpy, PIL and OpenCV. ``from mcdm.data import SynthFaces`` works as usual.
"""

import importlib
from typing import TYPE_CHECKING, Any

from mcdm.data.errors import DataError

_EXPORTS: dict[str, str] = {
    "LABELS": "labels", "BISENET_LABELS": "labels", "LABEL_ORDERS": "labels", "PART_NAMES": "labels",
    "UNKNOWN": "labels", "CELEBAMASK_HQ_PALETTE": "labels", "colorize_mask": "labels", "remap_labels": "labels",
    "FaceAttributes": "attributes", "sample_attributes": "attributes", "CAPTIONED": "attributes",
    "FaceSample": "sample", "SynthFaces": "synthfaces", "render_face": "render",
    "captions_for": "captions", "partial_caption": "captions", "parse_caption": "captions",
    "sketch_from_image": "sketch",
    "drop_mask_parts": "partial", "unknown_region": "partial", "erase_strokes": "partial",
    "erase_region": "partial", "upper_face_only": "partial", "upper_face_region": "partial",
    "load_or_build_cache": "cache", "SynthCache": "cache", "write_synthfaces": "writer",
    "CelebAMaskHQ": "adapters", "MMCelebAHQ": "adapters", "FolderFaces": "adapters", "FaceReader": "adapters",
}  # fmt: skip

__all__ = ["DataError", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mcdm.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mcdm.data.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # let type checkers and IDEs see the lazy names
    from mcdm.data.adapters import CelebAMaskHQ, FaceReader, FolderFaces, MMCelebAHQ
    from mcdm.data.attributes import CAPTIONED, FaceAttributes, sample_attributes
    from mcdm.data.cache import SynthCache, load_or_build_cache
    from mcdm.data.captions import captions_for, parse_caption, partial_caption
    from mcdm.data.labels import (
        BISENET_LABELS,
        CELEBAMASK_HQ_PALETTE,
        LABEL_ORDERS,
        LABELS,
        PART_NAMES,
        UNKNOWN,
        colorize_mask,
        remap_labels,
    )
    from mcdm.data.partial import (
        drop_mask_parts,
        erase_region,
        erase_strokes,
        unknown_region,
        upper_face_only,
        upper_face_region,
    )
    from mcdm.data.render import render_face
    from mcdm.data.sample import FaceSample
    from mcdm.data.sketch import sketch_from_image
    from mcdm.data.synthfaces import SynthFaces
    from mcdm.data.writer import write_synthfaces
