"""Sketches: the edge map of an image, as ControlNet's Canny annotator makes it.

We call OpenCV's ``cv2.Canny`` directly rather than controlnet-aux's ``CannyDetector``. The detector only
wraps ``cv2.Canny`` (same default thresholds, 100 and 200) but first resizes to ``detect_resolution``, rounded
to a multiple of 64: at 32x32 that crashes, and at other small sizes it blurs edges through a resize. Called
directly at the image's own size, the result equals ``CannyDetector()(image, detect_resolution=S,
image_resolution=S)`` for sizes S that are multiples of 64 (``tests/data`` checks this), works at every size,
and does not import controlnet-aux (which imports torch and timm).
"""

import cv2
import numpy as np

LOW_THRESHOLD = 100
HIGH_THRESHOLD = 200


def sketch_from_image(image: np.ndarray) -> np.ndarray:
    """Canny edges of an HxWx3 uint8 RGB image: HxW uint8, 255 on an edge, 0 elsewhere."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"sketch_from_image expects an HxWx3 uint8 image, got {image.dtype} {image.shape}")
    return cv2.Canny(np.ascontiguousarray(image), LOW_THRESHOLD, HIGH_THRESHOLD)
