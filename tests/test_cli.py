"""The ``mcdm`` command: generate from a composition folder, one-line errors, no partial output files."""

import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import SIZE
from mcdm.checkpoint import write_checksums
from mcdm.cli import cli


@pytest.fixture
def composition(make_composition):
    """A composition folder like the shipped ones: composition.yaml, model folders, SHA256SUMS."""
    folder = make_composition(steps=3, toy_b={"weight": 1.5})
    write_checksums(folder)
    return folder


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_generate_writes_a_grid(composition, tmp_path):
    out = tmp_path / "out" / "grid.png"
    result = run("generate", "--model", composition, "--cond", f"toy_a={composition / 'map.png'}",
                 "--num-images", 2, "--steps", 2, "--seed", 3, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.is_file() and "wrote 2 image(s)" in result.output
    assert Image.open(out).size[0] > SIZE  # two tiles side by side


def test_generate_writes_one_readable_png_per_image_beside_the_grid(composition, tmp_path_factory):
    args = ["generate", "--model", composition, "--cond", f"toy_a={composition / 'map.png'}", "--num-images", 3,
            "--steps", 2, "--seed", 3]
    old = os.umask(0o022)
    out = tmp_path_factory.mktemp("out")  # outside the composition folder, whose SHA256SUMS lists what it holds
    try:
        result = run(*args, "--out-dir", out / "each", "--out", out / "grid.png")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    files = sorted((out / "each").iterdir())
    assert [f.name for f in files] == ["000.png", "001.png", "002.png"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o644 for f in [*files, out / "grid.png"])
    assert f"wrote 3 image(s) to {out / 'grid.png'} and {out / 'each'}/ (000.png to 002.png)" in result.output
    grid = run(*args, "--out", out / "again.png")
    tiles = np.asarray(Image.open(out / "again.png").convert("RGB"))
    assert grid.exit_code == 0
    for i, f in enumerate(files):  # the same seed: each file is its tile of the grid
        assert Image.open(f).size == (SIZE, SIZE)
        x = 2 + i * (SIZE + 2)
        assert np.array_equal(tiles[2 : 2 + SIZE, x : x + SIZE], np.asarray(Image.open(f).convert("RGB")))


def test_generate_with_only_out_dir_writes_no_grid(composition, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("generate", "--model", composition, "--num-images", 1, "--steps", 1, "--out-dir", "each")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "each").iterdir()] == ["000.png"] and not (tmp_path / "mcdm-out.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cond", "sketchy=x.png"], "no model for modality 'sketchy'"),
        (["--cond", "toy_a"], "expected NAME=VALUE"),
        (["--weight", "toy_a=heavy"], "not a number"),
        (["--scheduler", "heun2"], "unknown scheduler 'heun2'"),
        (["--set", "steps=many"], "invalid configuration"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(composition, tmp_path, args, message):
    out = tmp_path / "never.png"
    result = run("generate", "--model", composition, "--out", out, "--steps", 1, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".never.png*"))


def test_corrupt_weights_fail_the_checksum(composition, tmp_path):
    weights = next((composition / "toy_a").rglob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-8] + b"12345678")
    result = run("generate", "--model", composition, "--out", tmp_path / "x.png")
    assert result.exit_code == 1 and "does not match its SHA-256" in result.output


def test_missing_model_names_the_places_it_looked(tmp_path):
    result = run("generate", "--model", "no-such-model", "--out", tmp_path / "x.png")
    assert result.exit_code == 1 and "no model folder 'no-such-model'; looked in" in result.output


def test_bench_without_speed_needs_the_quality_curve(composition, tmp_path):
    result = run("bench", "--model", composition, "--no-speed", "--out", tmp_path / "bench")
    assert result.exit_code != 0 and "--no-speed leaves nothing to do" in result.output
    assert not (tmp_path / "bench").exists()


@pytest.mark.parametrize("seed", ["4294967296", "-1", str(2**63)])
def test_a_seed_outside_32_bits_is_a_usage_error(composition, tmp_path, seed):
    result = run("generate", "--model", composition, "--seed", seed, "--out", tmp_path / "x.png")
    assert result.exit_code == 2 and "is not in the range 0<=x<=4294967295" in result.output
    assert not (tmp_path / "x.png").exists()


def test_eval_refuses_fewer_faces_than_its_figures_need(composition, tmp_path):
    result = run("eval", "--model", composition, "--n", 1, "--out", tmp_path / "eval")
    assert result.exit_code == 2 and "x>=2" in result.output
    assert not (tmp_path / "eval").exists()


def test_the_evaluation_api_refuses_one_face(composition):
    from mcdm.compose import Composer
    from mcdm.errors import ConfigError
    from mcdm.eval.evaluate import evaluate

    with pytest.raises(ConfigError, match="needs at least 2 faces"):
        evaluate(Composer.from_pretrained(composition), None, [], n=1)
