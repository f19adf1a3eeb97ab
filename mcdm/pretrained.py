"""Finding shipped compositions by name.

The rule, in order: an explicit path to a folder; then ``$MCDM_PRETRAINED_DIR/<name>``; then the
source checkout's ``pretrained/<name>``. A wheel carries no top-level folder, so users of an installed
package point ``MCDM_PRETRAINED_DIR`` at a copy of ``pretrained/`` (or pass the folder's path).
"""

from __future__ import annotations

import os
from pathlib import Path

from mcdm.errors import CheckpointError

COMPOSITION_FILE = "composition.yaml"
REPO_PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


def search_path() -> list[Path]:
    places = []
    if os.environ.get("MCDM_PRETRAINED_DIR"):
        places.append(Path(os.environ["MCDM_PRETRAINED_DIR"]))
    places.append(REPO_PRETRAINED)
    return places


def resolve(name_or_path: str | os.PathLike) -> Path:
    """The folder for a composition given by path or by name (see the module docstring for the rule)."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        return candidate
    tried = [str(candidate)]
    if candidate.name == str(name_or_path):  # a bare name: look it up
        for place in search_path():
            if (place / candidate.name).is_dir():
                return place / candidate.name
            tried.append(str(place / candidate.name))
    raise CheckpointError(f"no model folder {str(name_or_path)!r}; looked in: {', '.join(tried)}")


def given_by_path(name_or_path: str | os.PathLike) -> bool:
    """Whether ``name_or_path`` names a folder directly, rather than a composition to look up by name."""
    return Path(name_or_path).expanduser().is_dir()
