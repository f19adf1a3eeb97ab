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


def open_composition(name_or_path: str | os.PathLike, overrides=(), *, require_checksums: bool = False):
    """A composition's folder and validated config, its files verified, without loading a model (nor torch).

    A composition found by name must carry a SHA256SUMS listing every file it holds. One given by path, and a
    model folder outside it (an override's path), is checked against its own SHA256SUMS if it has one and
    loads with a warning if not, unless ``require_checksums`` (or ``MCDM_REQUIRE_CHECKSUMS=1``).
    """
    from mcdm.checkpoint import checksums_required_by_env, verify_checksums
    from mcdm.config import CompositionConfig, load_config

    folder = resolve(name_or_path)
    required = require_checksums or checksums_required_by_env()
    verify_checksums(folder, required=required or not given_by_path(name_or_path))
    config = load_config(CompositionConfig, folder / COMPOSITION_FILE, overrides)
    for path in (config.prior, *(m.path for m in config.modalities.values()), *([config.vae] if config.vae else [])):
        model_folder = (folder / path).resolve()
        if not model_folder.is_relative_to(folder.resolve()):  # not covered by the composition's SHA256SUMS
            verify_checksums(model_folder, required=required)
    return folder, config
