"""Writing a directory all at once: build it under a temporary name, then rename it into place."""

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``final``; on success rename it to ``final``.

    On any error (including Ctrl-C) the temporary directory is removed, so no half-written dataset is
    left behind. ``final`` may exist only as an empty directory; otherwise ``FileExistsError``.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"
    tmp.mkdir()  # unlike tempfile.mkdtemp, honours the umask: the result is readable like any directory
    try:
        yield tmp
        if final.is_dir() and not any(final.iterdir()):
            final.rmdir()
        if final.exists():
            raise FileExistsError(f"{final} appeared while it was being written")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
