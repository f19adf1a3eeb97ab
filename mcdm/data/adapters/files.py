"""Reading one image, mask, sketch or caption file, with a ``DataError`` naming the file on any problem."""

from pathlib import Path

import numpy as np
from PIL import Image

from mcdm.data.errors import DataError
from mcdm.data.labels import LABELS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def find_file(directory: Path, stem: str, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> Path:
    """The file ``directory/stem.<ext>`` for the first extension that exists (in lower or upper case)."""
    for ext in extensions:
        for suffix in (ext, ext.upper()):
            path = directory / f"{stem}{suffix}"
            if path.is_file():
                return path
    raise DataError(f"missing file {directory / stem}{{{','.join(extensions)}}}")


def _read(path: Path, mode: str | None) -> tuple[np.ndarray, str]:
    """Decode an image file fully (converted to ``mode`` unless None): (pixels, the file's own mode)."""
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so a truncated file fails here and not later
            return np.asarray(image.convert(mode) if mode else image), image.mode
    except FileNotFoundError as error:
        raise DataError(f"missing file {path}") from error
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot read image {path}: {error}") from error


def read_rgb(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB."""
    return _read(path, "RGB")[0]


def read_gray(path: Path) -> np.ndarray:
    """An image file as HxW uint8 luminance."""
    return _read(path, "L")[0]


def read_label_map(path: Path) -> np.ndarray:
    """A single-channel mask of label ids (L, P or I mode PNG) as HxW uint8, ids checked against ``LABELS``."""
    ids, mode = _read(path, None)
    if mode not in ("L", "P", "I", "I;16"):
        raise DataError(f"mask {path} must be a single-channel label map, got mode {mode}")
    bad = np.unique(ids[(ids < 0) | (ids >= len(LABELS))])
    if bad.size:
        raise DataError(f"mask {path} has label ids {bad.tolist()} outside 0..{len(LABELS) - 1}")
    return ids.astype(np.uint8)


def read_part_mask(path: Path) -> np.ndarray:
    """A CelebAMask-HQ per-part mask as HxW bool; like the official ``g_mask.py``, any nonzero pixel is the part."""
    return _read(path, "L")[0] != 0


def read_captions(path: Path) -> list[str]:
    """The non-empty lines of a UTF-8 text file; an empty file is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise DataError(f"missing file {path}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read captions {path}: {error}") from error
    captions = [line.strip() for line in text.splitlines() if line.strip()]
    if not captions:
        raise DataError(f"caption file {path} is empty")
    return captions


def resize_to(array: np.ndarray, size: tuple[int, int], resample: Image.Resampling, path: Path) -> np.ndarray:
    """Resize an HxW uint8 array to (height, width) = ``size``; refuses a different aspect ratio."""
    h, w = array.shape[:2]
    if (h, w) == size:
        return array
    if abs(h * size[1] - w * size[0]) > 0.01 * h * size[1]:
        raise DataError(f"{path} is {w}x{h}, which does not match the image's aspect ({size[1]}x{size[0]})")
    return np.asarray(Image.fromarray(array).resize((size[1], size[0]), resample))
