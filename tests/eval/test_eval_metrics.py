"""Every metric against cases computed by hand."""

import math

import numpy as np
import pytest

from mcdm.data.labels import UNKNOWN
from mcdm.eval import (attribute_accuracy, diversity, edge_f1, edge_f1_in_region, frechet_distance, mean_iou,
                       mean_iou_batch, per_class_iou)  # the package's lazy exports, as users import them

# ---------------------------------------------------------------- mean IoU


def test_mean_iou_perfect_prediction_is_one():
    mask = np.random.default_rng(0).integers(0, 19, size=(8, 8)).astype(np.uint8)
    assert mean_iou(mask, mask) == 1.0


def test_mean_iou_hand_computed():
    true = np.array([[0, 0], [1, 1]], dtype=np.uint8)
    pred = np.array([[0, 1], [1, 1]], dtype=np.uint8)
    # class 0: I = 1, U = 2; class 1: I = 2, U = 3
    assert mean_iou(pred, true) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_mean_iou_averages_over_classes_present_in_the_truth_only():
    true = np.array([[0, 0, 1, 1]], dtype=np.uint8)
    pred = np.array([[0, 5, 1, 1]], dtype=np.uint8)  # class 5 is absent from the truth: no term of its own
    # class 0: I = 1, U = 2; class 1: I = 2, U = 2
    assert mean_iou(pred, true) == pytest.approx((0.5 + 1.0) / 2)
    # a class predicted nowhere but present in the truth scores 0 and counts
    assert mean_iou(np.zeros_like(true), true) == pytest.approx((0.5 + 0.0) / 2)


def test_mean_iou_ignores_unknown_pixels():
    true = np.array([[0, 0, UNKNOWN, UNKNOWN]], dtype=np.uint8)
    assert mean_iou(np.array([[0, 0, 3, 7]], dtype=np.uint8), true) == 1.0
    assert mean_iou(np.array([[0, 2, 0, 0]], dtype=np.uint8), true) == pytest.approx(0.5)
    assert mean_iou(np.array([[0, 0, 3, 7]]), true, ignore=None) < 1.0  # scoring everything: 255 is a class


def test_mean_iou_without_known_pixels_is_nan_and_the_batch_skips_it():
    unknown = np.full((2, 2), UNKNOWN, dtype=np.uint8)
    assert math.isnan(mean_iou(np.zeros((2, 2), np.uint8), unknown))
    true = np.stack([unknown, np.array([[0, 0], [1, 1]], dtype=np.uint8)])
    pred = np.stack([np.zeros((2, 2), np.uint8), np.array([[0, 1], [1, 1]], dtype=np.uint8)])
    assert mean_iou_batch(pred, true) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_mean_iou_batch_is_the_mean_of_per_image_scores():
    true = np.array([[[0, 0], [1, 1]], [[2, 2], [2, 2]]], dtype=np.uint8)
    pred = np.array([[[0, 1], [1, 1]], [[2, 2], [2, 2]]], dtype=np.uint8)
    assert mean_iou_batch(pred, true) == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1.0) / 2)


def test_per_class_iou_pools_over_the_batch():
    true = np.array([[[0, 0], [1, 1]], [[1, 1], [1, 1]]], dtype=np.uint8)
    pred = np.array([[[0, 1], [1, 1]], [[1, 1], [1, 0]]], dtype=np.uint8)
    ious = per_class_iou(pred, true)
    assert ious.shape == (19,)
    assert ious[0] == pytest.approx(1 / 3)  # I = 1, U = 3
    assert ious[1] == pytest.approx(5 / 7)  # I = 2 + 3, U = 6 + 6 - 5
    assert np.isnan(ious[2:]).all()


def test_mean_iou_rejects_mismatched_shapes_and_float_maps():
    with pytest.raises(ValueError, match="differ in shape"):
        mean_iou(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="integer label map"):
        mean_iou(np.zeros((2, 2)), np.zeros((2, 2), np.uint8))


# ---------------------------------------------------------------- edges


def _vertical_line(column: int, size: int = 16) -> np.ndarray:
    edges = np.zeros((size, size), dtype=np.uint8)
    edges[:, column] = 255
    return edges


def test_edge_f1_perfect_prediction_is_one():
    assert edge_f1(_vertical_line(5), _vertical_line(5)) == 1.0


def test_edge_f1_shift_within_tolerance_keeps_one():
    assert edge_f1(_vertical_line(6), _vertical_line(5), tolerance=2) == 1.0
    assert edge_f1(_vertical_line(7), _vertical_line(5), tolerance=2) == 1.0


def test_edge_f1_shift_beyond_tolerance_drops():
    assert edge_f1(_vertical_line(8), _vertical_line(5), tolerance=2) == 0.0
    assert edge_f1(_vertical_line(6), _vertical_line(5), tolerance=0) == 0.0
    # the lower half of the line shifted right by 3: precision 8/16 (the shifted pixels are 3 away);
    # recall 10/16 (true rows 8 and 9 lie within 2 of the predicted pixel at row 7)
    pred = _vertical_line(5)
    pred[8:, 5], pred[8:, 8] = 0, 255
    p, r = 8 / 16, 10 / 16
    assert edge_f1(pred, _vertical_line(5), tolerance=2) == pytest.approx(2 * p * r / (p + r))


def test_edge_f1_hand_computed_precision_and_recall():
    true = _vertical_line(3)  # 16 pixels
    pred = true.copy()
    pred[0, 12] = 255  # one far false positive: P = 16/17, R = 1
    p, r = 16 / 17, 1.0
    assert edge_f1(pred, true) == pytest.approx(2 * p * r / (p + r))


def test_edge_f1_empty_maps():
    empty = np.zeros((8, 8), dtype=np.uint8)
    assert edge_f1(empty, empty) == 1.0
    assert edge_f1(_vertical_line(2, 8), empty) == 0.0
    assert edge_f1(empty, _vertical_line(2, 8)) == 0.0


def test_edge_f1_in_region_scores_only_inside():
    true = _vertical_line(5)
    pred = true.copy()
    pred[:, 12] = 255  # a wrong stroke on the right
    region = np.zeros(true.shape, dtype=bool)
    region[:, :9] = True
    assert edge_f1(pred, true) < 1.0
    assert edge_f1_in_region(pred, true, region) == 1.0
    assert edge_f1_in_region(pred, true, np.ones(true.shape, dtype=bool)) == edge_f1(pred, true)
    right = ~region
    assert edge_f1_in_region(pred, true, right) == 0.0  # predicted strokes there, none true
    assert edge_f1_in_region(true, true, right) == 1.0  # both empty there


def test_edge_f1_in_region_matches_across_the_border():
    true, pred = _vertical_line(8), _vertical_line(7)
    region = np.zeros(true.shape, dtype=bool)
    region[:, :8] = True  # pred inside, its true match one pixel outside
    # precision 1 (matched outside); recall has no true pixel inside: one map empty there -> 0 by definition
    assert edge_f1_in_region(pred, true, region) == 0.0
    region[:, 8] = True
    assert edge_f1_in_region(pred, true, region) == 1.0


def test_edge_f1_rejects_bad_input():
    with pytest.raises(ValueError, match="edge map"):
        edge_f1(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="region"):
        edge_f1_in_region(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), np.ones((4, 4), np.uint8))


# ---------------------------------------------------------------- distributions


def test_frechet_distance_of_identical_sets_is_zero():
    features = np.random.default_rng(0).normal(size=(200, 8))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_grows_with_a_mean_shift():
    features = np.random.default_rng(1).normal(size=(300, 6))
    distances = [frechet_distance(features, features + shift) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert distances == sorted(distances)
    # equal covariances: only the mean term remains, ||shift * 1||^2 = shift^2 * D
    assert distances[2] == pytest.approx(6.0, rel=1e-6)
    assert distances[3] == pytest.approx(24.0, rel=1e-6)


def test_frechet_distance_of_gaussians_with_known_covariances():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(20_000, 2))
    b = 2.0 * rng.normal(size=(20_000, 2))
    # Tr(I + 4I - 2 * 2I) = 2 * (1 + 4 - 4) = 2
    assert frechet_distance(a, b) == pytest.approx(2.0, rel=0.05)


def test_frechet_distance_with_fewer_samples_than_dimensions_is_finite():
    rng = np.random.default_rng(3)
    value = frechet_distance(rng.normal(size=(5, 16)), rng.normal(size=(5, 16)))
    assert np.isfinite(value) and value >= 0


def test_frechet_distance_rejects_bad_input():
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))


def test_diversity_is_the_mean_pairwise_distance():
    points = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    assert diversity(points) == pytest.approx((5 + 0 + 5) / 3)
    assert diversity(np.ones((4, 2, 2, 3))) == 0.0
    images = np.zeros((2, 2, 2, 3), dtype=np.uint8)
    images[1] = 255  # uint8 images are compared in [0, 1]: distance sqrt(12)
    assert diversity(images) == pytest.approx(np.sqrt(12))
    with pytest.raises(ValueError, match="N >= 2"):
        diversity(np.zeros((1, 4)))


# ---------------------------------------------------------------- attributes


def test_attribute_accuracy_scores_stated_attributes_only():
    predicted = {"gender": "male", "hair_color": "blond", "smiling": True, "hat": False}
    expected = {"gender": "male", "hair_color": "red", "smiling": True, "skin_tone": "tan"}
    assert attribute_accuracy(predicted, expected) == (2, 3)  # hat not stated, skin_tone not judged
    assert attribute_accuracy(predicted, expected, names=["gender"]) == (1, 1)
    assert attribute_accuracy(predicted, {}) == (0, 0)
    with pytest.raises(KeyError, match="eyeglasses"):
        attribute_accuracy(predicted, {"eyeglasses": True}, names=["eyeglasses"])
