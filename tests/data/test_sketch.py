import numpy as np
import pytest

from mcdm.data.sketch import sketch_from_image
from mcdm.data.synthfaces import SynthFaces


def test_sketch_works_at_32_pixels():
    sketch = SynthFaces(size=32, length=1)[0].sketch
    assert sketch.shape == (32, 32) and sketch.dtype == np.uint8 and sketch.any()


def test_sketch_equals_controlnet_canny_detector():
    """The dataset's sketches are what ControlNet's Canny annotator gives at the image's own size."""
    canny = pytest.importorskip("controlnet_aux.canny", reason="controlnet-aux not installed")
    image = SynthFaces(size=64, length=1)[0].image
    reference = canny.CannyDetector()(image, detect_resolution=64, image_resolution=64, output_type="np")
    assert np.array_equal(sketch_from_image(image), reference[..., 0])


def test_sketch_rejects_non_rgb_input():
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        sketch_from_image(np.zeros((8, 8), np.uint8))
