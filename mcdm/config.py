"""Structured configurations (dataclasses) for compositions, merged from YAML then dot-list overrides.

Library functions take these typed objects, never a ``DictConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TypeVar

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mcdm.combine import Baseline
from mcdm.errors import ConfigError
from mcdm.methods import MethodConfig

T = TypeVar("T")


@dataclass
class ModalityConfig:
    """One modality model in a composition. ``path`` is relative to the composition file's folder."""

    path: str = MISSING
    weight: float = 1.0
    start: float = 0.0  # time window, as fractions of T: the modality speaks while t/T is in [start, end]
    end: float = 1.0
    baseline: Baseline = Baseline.SHARED
    weight_map: bool = True  # use the modality's per-pixel weight map (e.g. a partial mask's known region)


@dataclass
class CompositionConfig:
    """A prior plus modality models and the default sampler settings."""

    name: str = "composition"
    prior: str = MISSING
    modalities: dict[str, ModalityConfig] = field(default_factory=dict)
    scheduler: str = "dpm++"
    steps: int = 25
    # eps_u as a mixture of priors, {name: weight} summing to 1: "prior" and/or modalities (their own
    # null-condition predictions); empty: the prior alone (mcdm.predictor.ComposedEps)
    prior_mixture: dict[str, float] = field(default_factory=dict)
    corrector_steps: int = 0  # Langevin steps after each sampler step (mcdm.sampling.langevin_correct)
    corrector_size: float = 0.1
    # beyond the plain sum: particles, balanced AND, OR, MALA (mcdm.methods.MethodConfig), e.g. method.particles=4
    method: MethodConfig = field(default_factory=MethodConfig)


def load_config(schema: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Schema defaults <- YAML file <- ``key=value`` overrides, validated, returned as the dataclass."""
    try:
        merged = OmegaConf.structured(schema)
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"configuration file {str(path)!r} does not exist")
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
        if overrides:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        where = f" in {str(path)!r}" if path is not None else ""
        raise ConfigError(f"invalid configuration{where}: {exc.msg if hasattr(exc, 'msg') else exc}") from exc
