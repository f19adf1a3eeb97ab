import numpy as np
import pytest

from mcdm.data import cache
from mcdm.data.cache import load_or_build_cache
from mcdm.data.synthfaces import SynthFaces


def test_cache_holds_exactly_the_dataset(tmp_path):
    cached = load_or_build_cache(32, 12, 3, "test", tmp_path, workers=1, progress=False)
    assert isinstance(cached.images, np.memmap) and not cached.images.flags.writeable
    assert cached.images.shape == (12, 32, 32, 3) and cached.masks.shape == (12, 32, 32)
    faces = SynthFaces(32, 3, "test", length=12)
    for i in (0, 11):
        sample, truth = cached[i], faces[i]
        assert np.array_equal(sample.image, truth.image) and np.array_equal(sample.mask, truth.mask)
        assert np.array_equal(sample.sketch, truth.sketch)
        assert sample.attributes == truth.attributes and sample.captions == truth.captions
    assert cached.attributes["smiling"].dtype == bool


def test_second_call_maps_the_cache_without_rebuilding(tmp_path, monkeypatch):
    first = load_or_build_cache(32, 4, 0, "train", tmp_path, workers=1, progress=False)
    monkeypatch.setattr(cache, "_build", lambda *a: pytest.fail("rebuilt"))
    second = load_or_build_cache(32, 4, 0, "train", tmp_path, workers=1, progress=False)
    assert second.path == first.path and np.array_equal(second.images, first.images)


def test_worker_processes_build_the_same_bytes(tmp_path):
    one = load_or_build_cache(32, 300, 1, "train", tmp_path / "a", workers=1, progress=False)
    two = load_or_build_cache(32, 300, 1, "train", tmp_path / "b", workers=2, progress=False)
    for name in ("images", "masks", "sketches", "attributes"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
    assert one.captions == two.captions


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(faces, chunk):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "_render_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_or_build_cache(32, 4, 0, "train", tmp_path, workers=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="size"):
        load_or_build_cache(16, 4, 0, "train", tmp_path)
    with pytest.raises(ValueError, match="n must"):
        load_or_build_cache(32, 0, 0, "train", tmp_path)
