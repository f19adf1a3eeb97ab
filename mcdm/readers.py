"""Reading the files mcdm is handed (JSON, YAML, safetensors) so that any damage is one line naming the file.

Every config or manifest goes through :func:`read_json_object` or :func:`read_yaml_mapping`: binary bytes, a
syntax error, a ``!!python`` tag (YAML is read with the safe loader), a list where a mapping belongs, or a folder
where a file belongs all become the caller's error class (``CheckpointError`` for model folders, ``ConfigError``
for configurations), never a ``UnicodeDecodeError`` or a parser's traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mcdm.errors import CheckpointError, MCDMError

# Suffixes of pickle-based weight files (torch.save, pickle, Lightning): mcdm never opens one.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model"  # the stem of a diffusers model's weights file


def read_text(path: str | os.PathLike, error: type[MCDMError]) -> str:
    """A file's UTF-8 text; a missing file, a folder or undecodable bytes raise ``error`` naming the file."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{str(path)!r} is a folder, not a file")
    if not path.is_file():
        raise error(f"{str(path)!r} does not exist")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    except OSError as exc:
        raise error(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc


def read_json_object(path: str | os.PathLike, error: type[MCDMError]) -> dict[str, Any]:
    """A JSON file that must hold one object (a mapping)."""
    text = read_text(path, error)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{str(path)!r} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    if not isinstance(value, dict):
        raise error(f"{str(path)!r} holds a JSON {type(value).__name__}, expected an object of keys and values")
    return value


def read_yaml_mapping(path: str | os.PathLike, error: type[MCDMError]):
    """A YAML file that must hold one non-empty mapping, as a ``DictConfig`` (OmegaConf's safe loader: no
    ``!!python`` tags; ``1e-4`` reads as a float)."""
    import yaml
    from omegaconf import DictConfig, OmegaConf

    text = read_text(path, error)
    try:
        value = OmegaConf.create(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{str(path)!r} is not valid YAML{at}: {problem}") from exc
    if not isinstance(value, DictConfig):
        raise error(f"{str(path)!r} holds a YAML list, expected a mapping of keys to values")
    if not value:
        raise error(f"{str(path)!r} is empty")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise error(f"{str(path)!r}: key {bad[0]!r} is not a string")
    return value


def pickle_files(folder: str | os.PathLike) -> list[Path]:
    """Every pickle-format weight file under ``folder`` (a model folder must hold none)."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def safetensors_weights(component: str | os.PathLike, stem: str, error: type[MCDMError]) -> list[Path]:
    """The safetensors files a diffusers/transformers component folder loads its weights from, checked.

    ``stem`` is the library's weights name (``diffusion_pytorch_model`` for diffusers models, ``model`` for
    transformers). Either ``<stem>.safetensors`` or a ``<stem>.safetensors.index.json`` whose every shard is a
    ``.safetensors`` file inside the folder; a pickle file anywhere in the folder is refused, so the library's
    fallbacks (``.bin`` shards, ``torch.load``) can never be reached.
    """
    component = Path(component)
    if not component.is_dir():
        raise error(f"{str(component)!r} does not exist")
    pickles = pickle_files(component)
    if pickles:
        raise error(f"{str(pickles[0])!r} is a pickle-format weight file; mcdm loads safetensors only")
    single = component / f"{stem}.safetensors"
    index = component / f"{stem}.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        weight_map = read_json_object(index, error).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise error(f"{str(index)!r} has no weight_map of tensor names to shard files")
        files = []
        for shard in dict.fromkeys(weight_map.values()):
            path = component / str(shard)
            if not str(shard).endswith(".safetensors") or path.resolve().parent != component.resolve():
                raise error(f"{str(index)!r} lists shard {shard!r}: every shard must be a .safetensors file in "
                            f"{str(component)!r}")
            if not path.is_file():
                raise error(f"{str(index)!r} lists shard {shard!r}, which is missing")
            files.append(path)
    else:
        raise error(f"{str(component)!r} has no {single.name} (nor a sharded index); mcdm loads safetensors only")
    for path in files:
        check_safetensors_header(path, error)
    return files


def check_safetensors_header(path: Path, error: type[MCDMError]) -> None:
    """A safetensors file whose header reads (an empty or truncated file fails here, naming it)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            if not list(f.keys()):
                raise error(f"{str(path)!r} holds no tensors")
    except MCDMError:
        raise
    except Exception as exc:  # safetensors raises its own error type for a damaged header
        raise error(f"{str(path)!r} is not a readable safetensors file ({exc})") from exc


def nonfinite_tensor(folder: str | os.PathLike) -> tuple[Path, str] | None:
    """The first (file, tensor name) under ``folder`` whose floating-point values are not all finite, or None."""
    import torch
    from safetensors import safe_open

    for path in sorted(Path(folder).rglob("*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                tensor = f.get_tensor(key)
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    return path, key
    return None


def read_weights_folder(folder: str | os.PathLike, config_file: str, weight_files: tuple[str, ...], *,
                        what: str) -> tuple[dict[str, Any], dict[str, dict]]:
    """The one reader of "config JSON + safetensors weights" folders (judges, the CLIP, training checkpoints).

    Returns ``(config, {weight file: tensors})``. The folder's SHA256SUMS, where it has one, is verified first
    (a folder without one is checked by whoever ships it, e.g. ``Judges.load`` at the judges' top folder).
    Only safetensors are read: nothing here can unpickle. Every failure is a ``CheckpointError`` naming the file.
    """
    from safetensors.torch import load_file

    from mcdm.checkpoint import CHECKSUMS, verify_checksums

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{what} folder {str(folder)!r} does not exist")
    for name in (config_file, *weight_files):
        if not (folder / name).is_file():
            raise CheckpointError(f"{str(folder)!r} is not a {what} folder: {name} is missing")
    if (folder / CHECKSUMS).exists():
        verify_checksums(folder)
    config = read_json_object(folder / config_file, CheckpointError)
    weights = {}
    for name in weight_files:
        try:
            weights[name] = load_file(folder / name)
        except Exception as exc:  # safetensors raises its own error types for a damaged file
            raise CheckpointError(f"{str(folder / name)!r} is not a readable safetensors file: {exc}") from exc
    return config, weights
