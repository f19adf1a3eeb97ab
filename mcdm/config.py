"""Structured configurations (dataclasses) for compositions, merged from YAML then dot-list overrides.

Library functions take these typed objects, never a ``DictConfig``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TypeVar

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mcdm.combine import Baseline
from mcdm.errors import ArgumentError, ConfigError
from mcdm.methods import MethodConfig
from mcdm.readers import read_yaml_mapping
from mcdm.validate import check_count, check_scheduler_name, check_weight

T = TypeVar("T")


@dataclass(frozen=True)
class ModalityConfig:
    """One modality model in a composition. ``path`` is relative to the composition file's folder."""

    path: str = MISSING
    weight: float = 1.0
    start: float = 0.0  # time window, as fractions of T: the modality speaks while t/T is in [start, end]
    end: float = 1.0
    baseline: Baseline = Baseline.SHARED
    weight_map: bool = True  # use the modality's per-pixel weight map (e.g. a partial mask's known region)

    def __post_init__(self):
        check_weight(None, self.weight)
        if not 0.0 <= self.start <= self.end <= 1.0:
            raise ArgumentError(f"time window needs 0 <= start <= end <= 1, got [{self.start}, {self.end}]")


@dataclass(frozen=True)
class CompositionConfig:
    """A prior plus modality models and the default sampler settings."""

    name: str = "composition"
    prior: str = MISSING
    modalities: dict[str, ModalityConfig] = field(default_factory=dict)
    vae: str = ""  # an AutoencoderKL folder to sample in the latent space of (empty: the prior's own, if latent)
    scheduler: str = "dpm++"
    steps: int = 25
    # eps_u as a mixture of priors, {name: weight} summing to 1: "prior" and/or modalities (their own
    # null-condition predictions); empty: the prior alone (mcdm.predictor.ComposedEps)
    prior_mixture: dict[str, float] = field(default_factory=dict)
    corrector_steps: int = 0  # Langevin steps after each sampler step (mcdm.sampling.langevin_correct)
    corrector_size: float = 0.1
    fuse: str = "auto"  # models of one architecture as one call per step (mcdm.fused): auto (not on CPU), always, never
    # beyond the plain sum: particles, balanced AND, OR, MALA (mcdm.methods.MethodConfig), e.g. method.particles=4
    method: MethodConfig = field(default_factory=MethodConfig)

    def __post_init__(self):
        check_count(self.steps, "steps")
        if self.fuse not in ("auto", "always", "never"):
            raise ArgumentError(f"fuse must be auto, always or never, got {self.fuse!r}")
        check_scheduler_name(self.scheduler)
        check_count(self.corrector_steps, "corrector_steps", minimum=0)
        if not (math.isfinite(self.corrector_size) and self.corrector_size > 0):
            raise ArgumentError(f"corrector_size must be a finite number above 0, got {self.corrector_size}")


def load_config(schema: type[T], path: str | Path | None = None, overrides: Sequence[str] = (), *,
                data=None) -> T:
    """Schema defaults <- YAML file <- ``key=value`` overrides, validated, returned as the dataclass.

    ``data``: the file's mapping already read (e.g. a composition merged with the one it extends), used instead
    of reading ``path``, which then only names it in errors.

    Every failure is one ConfigError naming the file (and the key, where one is at fault).
    """
    where = f" in {str(path)!r}" if path is not None else ""
    for override in overrides:
        key, sep, _ = str(override).partition("=")
        if not sep or not key.strip():
            raise ArgumentError(f"override {override!r} is not KEY=VALUE (e.g. steps=25)")
    from_file = data if data is not None else read_yaml_mapping(path, ConfigError) if path is not None else None
    try:
        merged = OmegaConf.structured(schema)
        if from_file is not None:
            merged = OmegaConf.merge(merged, from_file)
        if overrides:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        message = str(getattr(exc, "msg", None) or exc).splitlines()[0]
        raise ConfigError(f"invalid configuration{where}{f' at key {key!r}' if key else ''}: {message}") from exc
    except (ValueError, KeyError) as exc:  # a dot-list override that is not KEY=VALUE, or a failed __post_init__
        raise ConfigError(f"invalid configuration{where}: {str(exc).splitlines()[0]}") from exc
