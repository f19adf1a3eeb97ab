"""Face-part label ids: the CelebAMask-HQ convention, its colour palette, and the BiSeNet order.

Every mask in mcdm uses ``LABELS`` ids (index = id) unless a reader is told otherwise. Partial masks
mark pixels nobody knows with ``UNKNOWN``, which is deliberately not background: "no face part here"
and "no information here" are different conditions.
"""

from collections.abc import Sequence

import numpy as np

LABELS: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)  # fmt: skip
"""CelebAMask-HQ label names; the position is the label id (0 background ... 18 cloth)."""

BISENET_LABELS: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)  # fmt: skip
"""The order used by face-parsing.PyTorch (BiSeNet) checkpoints: same names, different ids (hair 17, hat 18)."""

LABEL_ORDERS: dict[str, tuple[str, ...]] = {"celebamask-hq": LABELS, "bisenet": BISENET_LABELS}

PART_NAMES: tuple[str, ...] = LABELS[1:]
"""The 18 CelebAMask-HQ part names, in the official order in which per-part masks are combined."""

UNKNOWN: int = 255
"""Value of a pixel whose label is unknown in a partial mask."""

CELEBAMASK_HQ_PALETTE: np.ndarray = np.array(
    [
        [0, 0, 0], [204, 0, 0], [76, 153, 0], [204, 204, 0], [51, 51, 255], [204, 0, 204],
        [0, 255, 255], [255, 204, 204], [102, 51, 0], [255, 0, 0], [102, 204, 0], [255, 255, 0],
        [0, 0, 153], [0, 0, 204], [255, 51, 153], [0, 204, 204], [0, 51, 0], [255, 153, 51],
        [0, 204, 0],
    ],
    dtype=np.uint8,
)  # fmt: skip
"""The colours of CelebAMask-HQ's own ``g_color.py``, row = label id."""
CELEBAMASK_HQ_PALETTE.setflags(write=False)

UNKNOWN_COLOR: tuple[int, int, int] = (128, 128, 128)
"""How ``colorize_mask`` shows ``UNKNOWN`` pixels (no palette entry is grey)."""


def check_mask(mask: np.ndarray, *, allow_unknown: bool, name: str = "mask") -> None:
    """Raise ValueError unless ``mask`` is an HxW integer array of valid label ids."""
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"{name} must be an HxW integer label map, got {mask.dtype} array of shape {mask.shape}")
    bad = (mask < 0) | (mask >= len(LABELS))
    if allow_unknown:
        bad &= mask != UNKNOWN
    if bad.any():
        ids = sorted({int(v) for v in np.unique(mask[bad])})
        allowed = f"0..{len(LABELS) - 1}" + (f" or UNKNOWN={UNKNOWN}" if allow_unknown else "")
        raise ValueError(f"{name} has label ids {ids} outside {allowed}")


def colorize_mask(mask: np.ndarray) -> np.ndarray:
    """Colour a label map (``LABELS`` ids, ``UNKNOWN`` allowed) with the CelebAMask-HQ palette: HxWx3 uint8."""
    check_mask(mask, allow_unknown=True)
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(LABELS)] = CELEBAMASK_HQ_PALETTE
    lut[UNKNOWN] = UNKNOWN_COLOR
    return lut[mask.astype(np.uint8)]


def remap_labels(mask: np.ndarray, source: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """Translate label ids from one order to another by name (e.g. ``LABELS`` to ``BISENET_LABELS``).

    ``UNKNOWN`` stays ``UNKNOWN``; a name missing from ``target`` is a ValueError.
    """
    missing = [n for n in source if n not in target]
    if missing:
        raise ValueError(f"label order has no id for {missing}")
    check_mask(mask, allow_unknown=True)
    lut = np.arange(256, dtype=np.uint8)
    lut[: len(source)] = [target.index(n) for n in source]
    return lut[mask.astype(np.uint8)]
