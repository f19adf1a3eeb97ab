"""Writing a folder or a file all at once: build it under a temporary name beside the target, then rename it
into place.

A crash, an exception or Ctrl-C leaves the previous folder (or none), never half of one.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_folder(target: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``target``; on success it becomes ``target``.

    ``replace=True`` swaps out an existing ``target``; ``replace=False`` allows ``target`` only as an empty
    folder and otherwise raises FileExistsError (another process finished the same work first).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(target)
    tmp.mkdir()  # unlike tempfile.mkdtemp, honours the umask: the result is readable like any folder
    try:
        yield tmp
        old = None
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        elif target.exists():
            if not replace:
                raise FileExistsError(f"{target} appeared while it was being written")
            old = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.old")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def partial_path(target: Path) -> Path:
    """A temporary name beside ``target`` for writing it before a rename: this process's id and a random token,
    as ``remove_orphans`` recognises when the process is gone."""
    return target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial"


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary name beside ``path`` to write; on success it is renamed to ``path``, on failure removed,
    so a reader sees the old file or the new one, never half of one."""
    tmp = partial_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (:func:`atomic_file`)."""
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def remove_orphans(parent: str | os.PathLike) -> list[Path]:
    """Delete the temporary folders that writers killed mid-write left in ``parent``; return what was removed.

    A temporary folder's name carries its writer's process id; one whose process is still alive (another
    run writing beside this one) is left alone.
    """
    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match and entry.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


_TEMPORARY = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}\.(partial|old)$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
