"""Evaluation: metrics (``mcdm.eval.metrics``) and the judges that read generated faces (``mcdm.eval.judges``).

``mcdm.eval.run.run_eval`` is ``mcdm eval`` as one call: it builds the rows (``rows``), generates them
(``evaluate``), scores them (``scoring``) and writes the tables (``tables``) and pictures (``pictures``).

Names are imported on first use, so ``import mcdm.eval`` imports neither torch nor scipy.
``mcdm train judges`` (``mcdm.eval.train_judges``) trains the judges.
"""

import importlib
from typing import TYPE_CHECKING, Any

MIN_FACES = 2  # faces per row below which the Fréchet distance (a covariance) is undefined

_EXPORTS: dict[str, str] = {
    "mean_iou": "metrics", "mean_iou_batch": "metrics", "per_class_iou": "metrics", "edge_f1": "metrics",
    "edge_f1_in_region": "metrics", "frechet_distance": "metrics", "diversity": "metrics",
    "attribute_accuracy": "metrics",
    "ParsingJudge": "judges", "AttributeJudge": "judges", "Judges": "judges", "ATTRIBUTE_HEADS": "judges",
    "attribute_targets": "judges", "judge_input": "judges",
}  # fmt: skip

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mcdm.eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mcdm.eval.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from mcdm.eval.judges import ATTRIBUTE_HEADS, AttributeJudge, Judges, ParsingJudge, attribute_targets, judge_input
    from mcdm.eval.metrics import (
        attribute_accuracy,
        diversity,
        edge_f1,
        edge_f1_in_region,
        frechet_distance,
        mean_iou,
        mean_iou_batch,
        per_class_iou,
    )
