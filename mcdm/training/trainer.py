"""What a trainer registers (``register_trainers``): the schema of its config and the function that runs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainingResult:
    """Where a run wrote its result, and the lines ``mcdm train`` prints about it."""

    folder: Path
    summary: str


@dataclass(frozen=True)
class Trainer:
    """``mcdm train NAME CONFIG [KEY=VALUE]... [--resume]``: ``schema`` is the config dataclass (every key with
    a ``doc`` metadata line, for ``--help-config``); ``run(config, resume)`` trains."""

    schema: type
    run: Callable[[Any, bool], TrainingResult]
