"""A training set's latents encoded once (mcdm.latent_cache): exactly encode's, keyed by the VAE, built atomically,
and a latent run that reads them trains as one that encodes each batch."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_train_latent import config, ema_weights, losses, write_vae

from mcdm import latent_cache, train
from mcdm.data.cache import load_or_build_cache
from mcdm.errors import ConfigError
from mcdm.latent import LatentSpace, load_vae
from mcdm.latent_cache import LATENTS, latents_folder, load_or_build_latents
from mcdm.pixels import to_model_range

SIZE, N = 32, 16


@pytest.fixture
def faces(tmp_path):
    return load_or_build_cache(SIZE, N, 0, "train", tmp_path / "cache", workers=1, progress=False)


@pytest.fixture
def vae(tmp_path):
    return write_vae(tmp_path / "vae")


@pytest.fixture
def cached_data(tmp_path, monkeypatch):
    """Training data of N faces read from a synthfaces cache under tmp_path, as data.length >= CACHE_FROM is."""
    monkeypatch.setenv("MCDM_CACHE_DIR", str(tmp_path / "mcdm-cache"))
    monkeypatch.setattr(train, "CACHE_FROM", 1)
    return tmp_path / "mcdm-cache" / "synthfaces"


def test_the_latents_are_exactly_what_encode_gives_each_batch_of_the_build(faces, vae):
    latent = load_vae(vae)
    latents = load_or_build_latents(faces, latent, batch_size=5, progress=False)
    assert isinstance(latents, np.memmap) and not latents.flags.writeable
    assert latents.dtype == np.float32 and latents.shape == (N, 4, SIZE // 2, SIZE // 2)
    expected = torch.cat([latent.encode(to_model_range(np.array(faces.images[i:i + 5]))) for i in range(0, N, 5)])
    assert torch.equal(torch.from_numpy(np.array(latents)), expected)
    assert sorted(p.name for p in latents_folder(faces, latent).iterdir()) == [LATENTS]


def test_a_second_call_maps_the_latents_without_encoding(faces, vae, monkeypatch):
    latent = load_vae(vae)
    first = np.array(load_or_build_latents(faces, latent, progress=False))
    monkeypatch.setattr(LatentSpace, "encode", lambda *a: pytest.fail("encoded again"))
    assert np.array_equal(load_or_build_latents(faces, latent, progress=False), first)


def test_another_vae_or_the_same_folder_changed_gets_latents_of_its_own(faces, tmp_path, vae):
    before = load_vae(vae)
    old = np.array(load_or_build_latents(faces, before, progress=False))
    write_vae(vae, seed=1)  # the same folder, other weights
    after = load_vae(vae)
    new = np.array(load_or_build_latents(faces, after, progress=False))
    assert latents_folder(faces, after) != latents_folder(faces, before)
    assert not np.array_equal(new, old)
    expected = after.encode(to_model_range(np.array(faces.images)))  # one batch of the build: N <= ENCODE_BATCH
    assert torch.equal(torch.from_numpy(new), expected)


def test_an_interrupted_build_leaves_nothing(faces, vae, monkeypatch):
    latent = load_vae(vae)
    calls = []

    def interrupted(self, images):
        calls.append(len(images))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return torch.zeros(len(images), 4, SIZE // 2, SIZE // 2)

    monkeypatch.setattr(LatentSpace, "encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_or_build_latents(faces, latent, batch_size=4, progress=False)
    assert calls == [4, 4]
    assert not [p for p in faces.path.iterdir() if "latents" in p.name]


def test_a_build_killed_mid_write_is_removed_and_one_still_writing_kept(faces, vae):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    latent = load_vae(vae)
    orphan = faces.path / f".latents-{latent.id}.{dead.pid}-0123abcd.partial"
    orphan.mkdir()
    (orphan / LATENTS).write_bytes(b"half")
    live = faces.path / f".latents-{latent.id}.{os.getpid()}-89abcdef.partial"  # this very process: still writing
    live.mkdir()
    load_or_build_latents(faces, latent, progress=False)
    assert not orphan.exists() and live.exists()


def test_a_build_finished_by_another_run_meanwhile_is_kept(faces, vae, monkeypatch):
    latent = load_vae(vae)
    encode = LatentSpace.encode
    theirs = []

    def another_run_finishes_first(self, images):
        monkeypatch.setattr(LatentSpace, "encode", encode)
        theirs.append(np.array(load_or_build_latents(faces, latent, progress=False)).copy())
        return torch.full((len(images), 4, SIZE // 2, SIZE // 2), 7.0)  # what this run would have written

    monkeypatch.setattr(LatentSpace, "encode", another_run_finishes_first)
    ours = load_or_build_latents(faces, latent, progress=False)
    assert np.array_equal(ours, theirs[0]) and not (np.asarray(ours) == 7.0).any()
    assert not [p for p in faces.path.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("stored, message", [
    (np.zeros((N, 4, 8, 8), np.float32), r"holds float32 \(16, 4, 8, 8\), not the float32 \(16, 4, 16, 16\)"),
    (np.zeros((N, 4, 16, 16), np.float64), "holds float64"),
    (np.array([{"pickled": 1}], dtype=object), "is not a latents array"),
], ids=["shape", "dtype", "pickle"])
def test_latents_that_do_not_fit_the_vae_and_data_are_refused_in_one_line(faces, vae, stored, message):
    latent = load_vae(vae)
    folder = latents_folder(faces, latent)
    folder.mkdir()
    np.save(folder / LATENTS, stored, allow_pickle=True)
    with pytest.raises(ConfigError, match=message) as error:
        load_or_build_latents(faces, latent, progress=False)
    assert "\n" not in str(error.value) and "delete the folder" in str(error.value)


@pytest.mark.parametrize("modality", [None, "sketch"])
def test_a_run_on_cached_latents_trains_exactly_as_one_that_encodes_each_batch(tmp_path, vae, cached_data, modality,
                                                                               monkeypatch):
    # A latent's last bits depend on how many images the encoder's convolutions see at once (about 1e-7 between
    # a batch of 4 and one of 16), and Adam's first steps, about lr * sign(gradient), turn a flipped sign of a
    # near-zero gradient into a difference of lr. Encoding the cache 4 at a time, as each step encodes its batch,
    # gives the same bits, so the two runs must agree exactly.
    monkeypatch.setattr(latent_cache, "ENCODE_BATCH", 4)
    extra = ["steps=3", "batch_size=4", *([f"modality={modality}"] if modality else [])]
    train.train(config(tmp_path / "cached", vae, *extra), progress=False)
    (dataset,) = cached_data.iterdir()
    assert [p.name for p in dataset.glob("latents-*")] == [f"latents-{load_vae(vae).id}"]
    train.train(config(tmp_path / "encoded", vae, "latent_cache=false", *extra), progress=False)
    cached, encoded = ema_weights(tmp_path / "cached", 3), ema_weights(tmp_path / "encoded", 3)
    assert cached.keys() == encoded.keys() and all(torch.equal(cached[k], encoded[k]) for k in cached)
    assert losses(tmp_path / "cached") == losses(tmp_path / "encoded")

    monkeypatch.setattr(LatentSpace, "encode", lambda *a: pytest.fail("a run on cached latents encoded"))
    train.train(config(tmp_path / "again", vae, *extra), progress=False)
    again = ema_weights(tmp_path / "again", 3)
    assert all(torch.equal(again[k], cached[k]) for k in cached)  # the same latents, read back


def test_a_run_whose_data_is_not_cached_encodes_each_batch(tmp_path, vae, monkeypatch):
    calls = []
    encode = LatentSpace.encode
    monkeypatch.setattr(LatentSpace, "encode", lambda self, images: calls.append(len(images)) or encode(self, images))
    train.train(config(tmp_path / "run", vae, "steps=2"), progress=False)  # 16 faces: rendered, not cached
    assert calls == [1, 2, 2]  # the check before training, then each step's batch


def test_a_batch_names_the_samples_its_images_are_of(faces):
    cfg = config("unused", "unused", "batch_size=5")
    batch = train.make_batch(faces, None, cfg, 3, 0, 0, 1)
    assert batch.indices.shape == (5,) and batch.cond is None
    assert torch.equal(batch.images, to_model_range(faces.images[batch.indices]))
    again = train.make_batch(faces, None, cfg, 3, 0, 0, 1)
    assert np.array_equal(again.indices, batch.indices) and torch.equal(again.images, batch.images)
    assert not np.array_equal(train.make_batch(faces, None, cfg, 4, 0, 0, 1).indices, batch.indices)
