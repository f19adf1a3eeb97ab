"""Evaluation metrics: pure functions of arrays, each with its exact definition in its docstring.

Conventions shared by every function here:

* label maps are HxW integer arrays of ``mcdm.data.labels.LABELS`` ids; ``UNKNOWN`` (255) marks pixels a
  partial mask does not know, and such pixels are never scored;
* edge maps are HxW boolean or integer arrays, nonzero on an edge (sketches use 255);
* feature sets are ``(N, D)`` arrays, one row per sample.

Nothing here imports torch: the judges (``mcdm.eval.judges``) turn images into masks, attributes and
features, and these functions score those.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import linalg
from scipy.ndimage import distance_transform_edt
from scipy.spatial.distance import pdist

from mcdm.data.labels import LABELS, UNKNOWN

__all__ = [
    "attribute_accuracy",
    "diversity",
    "edge_f1",
    "edge_f1_in_region",
    "frechet_distance",
    "mean_iou",
    "mean_iou_batch",
    "per_class_iou",
]

NUM_CLASSES = len(LABELS)


# ---------------------------------------------------------------- segmentation


def _label_pair(pred_mask: Any, true_mask: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    pred, true = np.asarray(pred_mask), np.asarray(true_mask)
    for name, array in (("pred_mask", pred), ("true_mask", true)):
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{where}: {name} must be an integer label map, got dtype {array.dtype}")
    if pred.shape != true.shape:
        raise ValueError(f"{where}: pred_mask {pred.shape} and true_mask {true.shape} differ in shape")
    return pred, true


def mean_iou(pred_mask: Any, true_mask: Any, ignore: int | None = UNKNOWN) -> float:
    """Mean intersection-over-union of one predicted label map against the true one.

    Only pixels whose true label is not ``ignore`` are scored ("known" pixels; ``ignore=None`` scores all).
    For every class ``c`` that occurs among the known pixels of ``true_mask``::

        IoU_c = |{pred == c} & {true == c}| / |{pred == c} | {true == c}|     (both restricted to known pixels)

    and the result is the unweighted mean of ``IoU_c`` over those classes. Classes absent from the true mask
    do not get a term of their own: pixels wrongly predicted as such a class are already counted against the
    true class they belong to. A perfect prediction scores 1.0. A true mask with no known pixel scores
    ``nan`` (nothing to score); ``mean_iou_batch`` skips such images.
    """
    pred, true = _label_pair(pred_mask, true_mask, "mean_iou")
    known = true != ignore if ignore is not None else np.ones(true.shape, dtype=bool)
    pred, true = pred[known].astype(np.int64), true[known].astype(np.int64)
    if true.size == 0:
        return float("nan")
    classes = np.unique(true)
    ious = [np.sum((pred == c) & (true == c)) / np.sum((pred == c) | (true == c)) for c in classes]
    return float(np.mean(ious))


def mean_iou_batch(pred_masks: Any, true_masks: Any, ignore: int | None = UNKNOWN) -> float:
    """The mean over images of ``mean_iou`` (``(N, H, W)`` arrays or sequences of HxW maps).

    Each image weighs the same; images whose true mask has no known pixel (``nan``) are left out. With no
    image left the result is ``nan``.
    """
    if len(pred_masks) != len(true_masks):
        raise ValueError(f"mean_iou_batch: {len(pred_masks)} predicted masks but {len(true_masks)} true masks")
    scores = np.array([mean_iou(p, t, ignore) for p, t in zip(pred_masks, true_masks)], dtype=np.float64)
    scores = scores[~np.isnan(scores)]
    return float(scores.mean()) if scores.size else float("nan")


def per_class_iou(
    pred_masks: Any, true_masks: Any, ignore: int | None = UNKNOWN, num_classes: int = NUM_CLASSES
) -> np.ndarray:
    """IoU of each class pooled over a whole batch: ``(num_classes,)`` float64.

    ``IoU_c = sum_images |pred == c & true == c| / sum_images |pred == c | true == c|`` over known pixels (as
    in ``mean_iou``). A class that neither the prediction nor the truth contains anywhere is ``nan``.
    Pooling weighs large parts more than ``mean_iou_batch`` does; it shows which parts a model gets wrong.
    """
    pred, true = _label_pair(pred_masks, true_masks, "per_class_iou")
    known = true != ignore if ignore is not None else np.ones(true.shape, dtype=bool)
    pred, true = pred[known].astype(np.int64), true[known].astype(np.int64)
    inside = (pred >= 0) & (pred < num_classes)
    intersection = np.bincount(true[(pred == true) & inside], minlength=num_classes)[:num_classes]
    union = (
        np.bincount(true[(true >= 0) & (true < num_classes)], minlength=num_classes)[:num_classes]
        + np.bincount(pred[inside], minlength=num_classes)[:num_classes]
        - intersection
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.maximum(union, 1), np.nan)


# ---------------------------------------------------------------- edges


def _edge_map(edges: Any, name: str, where: str) -> np.ndarray:
    array = np.asarray(edges)
    if array.ndim != 2 or not (array.dtype == bool or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"{where}: {name} must be an HxW bool or integer edge map, got {array.dtype} {array.shape}")
    return array != 0


def _edge_scores(pred: np.ndarray, true: np.ndarray, region: np.ndarray, tolerance: float) -> float:
    pred_in, true_in = pred & region, true & region
    n_pred, n_true = int(pred_in.sum()), int(true_in.sum())
    if n_pred == 0 and n_true == 0:
        return 1.0
    if n_pred == 0 or n_true == 0:
        return 0.0
    # distance from every pixel to the nearest true (resp. predicted) edge pixel, anywhere in the image
    to_true = distance_transform_edt(~true)
    to_pred = distance_transform_edt(~pred)
    precision = float(np.mean(to_true[pred_in] <= tolerance))
    recall = float(np.mean(to_pred[true_in] <= tolerance))
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def edge_f1(pred_edges: Any, true_edges: Any, tolerance: float = 2) -> float:
    """F1 score of a predicted edge map against the true one, with a distance tolerance.

    * precision = share of predicted edge pixels whose Euclidean distance to the nearest true edge pixel is
      at most ``tolerance`` pixels (``scipy.ndimage.distance_transform_edt``; pixel centres, so a one-pixel
      diagonal step is sqrt(2));
    * recall = share of true edge pixels within ``tolerance`` of a predicted edge pixel;
    * F1 = 2 P R / (P + R), and 0.0 when P + R = 0.

    Both maps empty: 1.0 (nothing to draw, nothing drawn). Exactly one empty: 0.0. With ``tolerance=0`` this
    is exact pixel matching. Edge maps are HxW, nonzero on an edge (sketches use 255).
    """
    pred = _edge_map(pred_edges, "pred_edges", "edge_f1")
    true = _edge_map(true_edges, "true_edges", "edge_f1")
    if pred.shape != true.shape:
        raise ValueError(f"edge_f1: pred_edges {pred.shape} and true_edges {true.shape} differ in shape")
    return _edge_scores(pred, true, np.ones(pred.shape, dtype=bool), tolerance)


def edge_f1_in_region(pred_edges: Any, true_edges: Any, region: Any, tolerance: float = 2) -> float:
    """``edge_f1`` scored only inside ``region`` (an HxW boolean map), for partial sketches.

    Precision counts only the predicted edge pixels inside the region, recall only the true edge pixels
    inside it; the distances are still measured to the nearest edge pixel anywhere in the other map, so an
    edge on the region's border matched by one just outside it still counts. "Empty" in the special cases
    means empty inside the region: both empty there 1.0, exactly one empty there 0.0.
    ``edge_f1_in_region(p, t, all-True) == edge_f1(p, t)``.
    """
    pred = _edge_map(pred_edges, "pred_edges", "edge_f1_in_region")
    true = _edge_map(true_edges, "true_edges", "edge_f1_in_region")
    inside = np.asarray(region)
    if inside.dtype != bool or inside.shape != pred.shape or pred.shape != true.shape:
        raise ValueError(
            "edge_f1_in_region: pred_edges, true_edges and a boolean region must share one HxW shape, got "
            f"{pred.shape}, {true.shape} and {inside.dtype} {inside.shape}"
        )
    return _edge_scores(pred, true, inside, tolerance)


# ---------------------------------------------------------------- distributions


def _features(features: Any, name: str, where: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        raise ValueError(f"{where}: {name} must be an (N, D) feature array with N >= 2, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{where}: {name} contains nan or inf")
    return array


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    With means ``mu`` and unbiased covariances ``S`` (``np.cov``, divisor N - 1) of the ``(N, D)`` rows::

        d = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))

    computed in float64 with ``scipy.linalg.sqrtm``. Rounding can give the matrix square root a tiny
    imaginary part or leave it non-finite when a covariance is singular; as in pytorch-fid, ``1e-6 * I`` is
    then added to both covariances, and the imaginary part of the result is dropped (a warning says when
    it was not negligible). The result is clipped at 0.

    Small samples: the estimate is biased upwards (by roughly ``Tr(S)/N`` for each set), and with ``N <= D``
    the covariances are singular. Compare distances only between sets of equal sizes, and prefer N well
    above D (the attribute judge's features have D = 128). Each set needs N >= 2.
    """
    a = _features(features_a, "features_a", "frechet_distance")
    b = _features(features_b, "features_b", "frechet_distance")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"frechet_distance: feature sizes differ ({a.shape[1]} vs {b.shape[1]})")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(cov_a.shape[0]) * 1e-6
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(covmean):
        imaginary = float(np.max(np.abs(covmean.imag)))
        if imaginary > 1e-3 * max(1.0, float(np.max(np.abs(covmean.real)))):
            warnings.warn(f"frechet_distance: dropped an imaginary part of {imaginary:.3g} from sqrtm", stacklevel=2)
        covmean = covmean.real
    diff = mu_a - mu_b
    distance = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean)
    return float(max(distance, 0.0))


def diversity(images_or_features: Any) -> float:
    """Mean pairwise Euclidean (L2) distance between the N items of a set: ``mean_{i<j} ||x_i - x_j||_2``.

    Each item is flattened to one float64 vector. uint8 inputs (images) are first divided by 255, so images
    are compared in [0, 1] per channel; any other numeric input (features, float images) is used as given.
    Identical items give 0. Needs N >= 2. Compare values only between sets of the same kind and size.
    """
    array = np.asarray(images_or_features)
    if array.ndim < 2 or array.shape[0] < 2:
        raise ValueError(f"diversity: needs an array of N >= 2 items, got shape {array.shape}")
    vectors = array.reshape(array.shape[0], -1).astype(np.float64)
    if array.dtype == np.uint8:
        vectors /= 255.0
    return float(pdist(vectors, metric="euclidean").mean())


# ---------------------------------------------------------------- attributes


def attribute_accuracy(
    predicted: Mapping[str, Any], expected: Mapping[str, Any], names: Sequence[str] | None = None
) -> tuple[int, int]:
    """``(correct, total)`` over the attributes stated in ``expected`` that are judged.

    ``expected`` is what a condition says, e.g. ``mcdm.data.captions.parse_caption(caption)``;
    ``predicted`` is what a judge read off the image (``AttributeJudge.predict``). The judged attributes are
    ``names`` (default: the keys of ``predicted``). ``total`` counts the judged names present in ``expected``
    (attributes a caption does not state, such as a hair colour for a bald face, are not scored);
    ``correct`` counts those where ``predicted[name] == expected[name]``. A name in ``names`` missing from
    ``predicted`` is an error, not a silent miss.
    """
    judged = list(predicted) if names is None else list(names)
    missing = [n for n in judged if n in expected and n not in predicted]
    if missing:
        raise KeyError(f"attribute_accuracy: predicted has no value for {missing}")
    scored = [n for n in judged if n in expected]
    return sum(predicted[n] == expected[n] for n in scored), len(scored)
