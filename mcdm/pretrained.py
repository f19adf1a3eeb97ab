"""Finding shipped compositions (and judges) by name.

The rule, in order:

1. a path to an existing folder is that folder;
2. ``$MCDM_PRETRAINED_DIR/<name>``, or ``$MCDM_PRETRAINED_DIR`` itself when that folder is named ``<name>``;
3. ``<package>/<name>`` for every installed model package: a distribution with an entry point in the
   ``mcdm.pretrained`` group naming a package that carries model folders as data (``mcdm-models-synthfaces``
   carries ``synthfaces-32`` and ``judges-32``);
4. the source checkout's ``pretrained/<name>``, when mcdm runs from a checkout.

A name found nowhere is a CheckpointError listing every place looked (and whether the variable is set).

A composition may extend another (``extends: synthfaces-32``): the other is found by the same rule (a path
relative to the extending composition's folder first), its files verified as if it were opened itself, and its
settings kept wherever the extending file does not change them (``modalities.<m>: null`` removes one).
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os
from pathlib import Path

from mcdm.distributions import install_hint
from mcdm.errors import CheckpointError

COMPOSITION_FILE = "composition.yaml"
EXTENDS = "extends"
ENTRY_POINT_GROUP = "mcdm.pretrained"
ENV_VAR = "MCDM_PRETRAINED_DIR"
REPO_PRETRAINED = Path(__file__).resolve().parent.parent / "pretrained"


def model_packages() -> list[tuple[str, Path]]:
    """(distribution, folder) of every installed model package, in entry-point order."""
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        owner = ep.dist.name if ep.dist is not None else ep.name
        try:
            found.append((owner, Path(str(importlib.resources.files(ep.module)))))
        except ImportError as exc:
            raise CheckpointError(
                f"model package {owner!r} names {ep.module!r}, which cannot be imported: {exc}") from exc
    return found


def places(name: str) -> list[tuple[Path | None, str]]:
    """Where a bare name is looked for, in order: (folder, what it is); no folder for a place that is absent."""
    found: list[tuple[Path | None, str]] = []
    if os.environ.get(ENV_VAR):
        root = Path(os.environ[ENV_VAR]).expanduser()
        found.append((root / name, f"${ENV_VAR}/{name}"))
        if root.name == name:
            found.append((root, f"${ENV_VAR}"))
    else:
        found.append((None, f"${ENV_VAR} (not set)"))
    packages = model_packages()
    found += [(folder / name, f"installed by {owner}") for owner, folder in packages] or [
        (None, "installed model packages (none)")]
    if REPO_PRETRAINED.is_dir():
        found.append((REPO_PRETRAINED / name, "this checkout"))
    return found


def resolve(name_or_path: str | os.PathLike) -> Path:
    """The folder for a composition given by path or by name (see the module docstring for the rule)."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        return candidate
    tried = [str(candidate)]
    if candidate.name == str(name_or_path):  # a bare name: look it up
        lookup = places(candidate.name)
        for folder, _ in lookup:
            if folder is not None and folder.is_dir():
                return folder
        tried += [what if folder is None else f"{folder} ({what})" for folder, what in lookup]
    raise CheckpointError(f"no model folder {str(name_or_path)!r}; looked in: {', '.join(tried)}"
                          f"{install_hint('model', str(name_or_path))}")


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
    mapping, verified = _read_composition(folder, required, ())
    config = load_config(CompositionConfig, folder / COMPOSITION_FILE, overrides, data=mapping)
    for path in (config.prior, *(m.path for m in config.modalities.values()), *([config.vae] if config.vae else [])):
        model_folder = (folder / path).resolve()
        if not any(model_folder.is_relative_to(v) for v in verified):  # not covered by a verified SHA256SUMS
            verify_checksums(model_folder, required=required)
    return folder, config


def _read_composition(folder: Path, required: bool, chain: tuple[Path, ...]):
    """``composition.yaml`` as a mapping with what it extends merged under it (the other's model paths made
    absolute), and the composition folders whose SHA256SUMS were verified."""
    from omegaconf import OmegaConf

    from mcdm.checkpoint import verify_checksums
    from mcdm.errors import ConfigError
    from mcdm.readers import read_yaml_mapping

    mapping = read_yaml_mapping(folder / COMPOSITION_FILE, ConfigError)
    parent = mapping.pop(EXTENDS, None)
    if parent is None:
        return mapping, [folder.resolve()]
    where = str(folder / COMPOSITION_FILE)
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{where!r}: {EXTENDS} must name a composition (a name or a folder), got {parent!r}")
    local = folder / parent  # a folder relative to this composition's comes first
    local_dir = local.is_dir()
    base = local if local_dir else resolve(parent)
    by_path = local_dir or given_by_path(parent)
    if base.resolve() in (folder.resolve(), *chain):
        raise ConfigError(f"{where!r}: {EXTENDS}: {parent!r} extends itself (through {str(base)!r})")
    verify_checksums(base, required=required or not by_path)
    inherited, verified = _read_composition(base, required, (*chain, folder.resolve()))
    inherited = OmegaConf.to_container(inherited)
    for entry in (inherited, *inherited.get("modalities", {}).values()):
        for key in ("prior", "path", "vae"):
            if entry.get(key):  # relative to the extended composition's folder, wherever this one lies
                entry[key] = str((base / entry[key]).resolve())
    merged = OmegaConf.merge(OmegaConf.create(inherited), mapping)
    if "modalities" in merged:
        merged.modalities = {m: s for m, s in merged.modalities.items() if s is not None}
    return merged, [*verified, folder.resolve()]
