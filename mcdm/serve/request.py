"""A request from the page as a value, and the bundle that reproduces it: ``composition.yaml`` + ``mcdm generate``.

The page saves every drawn or uploaded input as a file in the request's folder and hands the Composer those
paths, as ``mcdm generate --cond NAME=FILE`` does, so the bundle's command reads the same bytes and, with the
same seed, writes the page's images bit for bit.
"""

from __future__ import annotations

import dataclasses
import shlex
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mcdm.config import CompositionConfig, ModalityConfig

RESULT_FILE = "faces.png"
BUNDLE_FILE = "request.zip"
COMMAND_FILE = "command.txt"


@dataclass(frozen=True)
class Request:
    """One generation: each condition is a file name in ``folder`` (listed in ``files``) or the text itself."""

    folder: Path
    conditions: dict[str, str]
    files: frozenset[str]
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    scheduler: str = "dpm++"
    steps: int = 25
    seed: int = 0
    num_images: int = 1
    corrector_steps: int = 0
    corrector_size: float = 0.1

    def raw_conditions(self) -> dict[str, str]:
        """What ``Composer.generate_tensor`` reads: file paths and texts."""
        return {name: str(self.folder / value) if name in self.files else value
                for name, value in self.conditions.items()}

    def generate_kwargs(self) -> dict[str, Any]:
        return {"num_images": self.num_images, "steps": self.steps, "seed": self.seed, "scheduler": self.scheduler,
                "settings": self.settings, "corrector_steps": self.corrector_steps,
                "corrector_size": self.corrector_size}

    def command(self) -> str:
        """The ``mcdm generate`` command that reproduces the request, run in the unpacked bundle's folder."""
        args = ["mcdm", "generate", "--model", "."]
        args += [f"--cond={name}={value}" for name, value in self.conditions.items()]
        args += ["--seed", str(self.seed), "--num-images", str(self.num_images), "--out", RESULT_FILE]
        return shlex.join(args)


def composition_yaml(request: Request, config: CompositionConfig, merged: dict[str, ModalityConfig],
                     root: Path) -> str:
    """The composition with the request's settings in place of its defaults and its models' absolute paths.

    ``merged``: the modality settings the request ran with (``Composer.request_settings``).
    """
    modalities = {name: dataclasses.replace(setting, path=str((root / config.modalities[name].path).resolve()))
                  for name, setting in merged.items()}
    written = dataclasses.replace(config, prior=str((root / config.prior).resolve()), modalities=modalities,
                                  scheduler=request.scheduler, steps=request.steps,
                                  corrector_steps=request.corrector_steps, corrector_size=request.corrector_size)
    plain = OmegaConf.to_container(OmegaConf.structured(written), enum_to_str=True)
    for setting in plain["modalities"].values():  # the enum's value ("own"), as composition files spell it
        setting["baseline"] = setting["baseline"].lower()
    return OmegaConf.to_yaml(plain)


def write_bundle(request: Request, yaml_text: str) -> Path:
    """``request.zip`` in the request's folder: composition.yaml, the input files and the command."""
    bundle = request.folder / BUNDLE_FILE
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("composition.yaml", yaml_text)
        for name in sorted(request.files):
            archive.write(request.folder / request.conditions[name], request.conditions[name])
        archive.writestr(COMMAND_FILE, request.command() + "\n")
    return bundle
