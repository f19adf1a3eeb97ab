"""Reading the ``filenames.pickle`` lists of Multi-Modal-CelebA-HQ without executing anything.

A pickle can name any importable callable and have the loader call it (``os.system``, ...). The only thing a
filenames list needs is lists and strings, which pickle encodes without naming a single class, so the
unpickler below refuses every class lookup and the result must be a list of names.
"""

import io
import pickle
from pathlib import Path

from mcdm.data.errors import DataError


class _NoClassesUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> None:  # type: ignore[override]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a filenames list needs no classes")


def read_filenames_pickle(path: Path) -> list[str]:
    """The list of sample names stored in ``path``; any other content is a ``DataError``."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        names = _NoClassesUnpickler(io.BytesIO(data)).load()
    except Exception as error:  # a malformed pickle can raise almost anything
        raise DataError(f"{path} is not a plain list of file names: {error}") from error
    if not isinstance(names, list) or not all(isinstance(n, (str, bytes)) for n in names):
        raise DataError(f"{path} must hold a list of str names, got {type(names).__name__}")
    try:
        decoded = [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]
    except UnicodeDecodeError as error:
        raise DataError(f"{path} contains a file name that is not UTF-8: {error}") from error
    for name in decoded:
        # names become file paths under the dataset root: nothing may point outside it
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise DataError(f"{path} contains an invalid file name {name!r}")
    return decoded
