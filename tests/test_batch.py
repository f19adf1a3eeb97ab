"""``mcdm generate --requests``: a JSONL of requests, checked line by line, shared by processes, resumable."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import SIZE
from mcdm.cli import cli

TORCHRUN = Path(sys.executable).with_name("torchrun")
# the folders have no SHA256SUMS (a corrupt weights file must be reached by loading, not by the checksums)
pytestmark = pytest.mark.filterwarnings("ignore::mcdm.errors.UnverifiedModelWarning")


@pytest.fixture
def composition(make_composition):
    return make_composition(steps=2)


def requests_file(folder: Path, n: int) -> Path:
    cond = str(folder / "map.png")
    lines = [{"id": f"r{i}", "conditions": {"toy_a": cond} if i % 2 else {"toy_b": cond, "toy_a": cond}, "seed": i,
              "num_images": 1 + i % 2, "weights": {"toy_a": 1.5}, "settings": {"toy_a": {"baseline": "own"}}}
             for i in range(n)]
    path = folder / "requests.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not installed")
def test_two_processes_do_every_request_exactly_once_and_a_restart_skips_finished_ones(composition, tmp_path):
    requests, out = requests_file(composition, 5), tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = ["--standalone", "--nproc_per_node", "2", "-m", "mcdm.cli", "generate", "--model", str(composition),
               "--requests", str(requests), "--out-dir", str(out)]
    result = subprocess.run([str(TORCHRUN), *command], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = manifest(out)
    assert {row["world_size"] for row in rows} == {2}
    assert {row["process"] for row in rows} == {0, 1}  # the work was shared
    assert [(row["request"]["id"], row["image"]) for row in rows] == [
        ("r0", 0), ("r1", 0), ("r1", 1), ("r2", 0), ("r3", 0), ("r3", 1), ("r4", 0)]  # each once, in file order
    assert all(Image.open(out / row["file"]).size == (SIZE, SIZE) for row in rows)
    assert set(rows[0]["models"]) == {"prior", "toy_a", "toy_b"} and rows[0]["seed"] == 0
    assert not list(out.rglob("*.partial"))
    # a restart after losing one request's record redoes that one request only
    (out / ".done" / "r3.json").unlink()
    before = (out / "r1-000.png").read_bytes()
    again = CliRunner().invoke(cli, ["generate", "--model", str(composition), "--requests", str(requests),
                                     "--out-dir", str(out)])
    assert again.exit_code == 0, again.output
    assert "generated 1 of 5 request(s), 4 already done" in again.output
    assert len(manifest(out)) == 7 and (out / "r1-000.png").read_bytes() == before


def test_a_request_done_twice_is_refused(composition, tmp_path):
    from mcdm.batch import _create_once
    from mcdm.errors import ArgumentError

    _create_once(tmp_path / "r.json", "{}")
    with pytest.raises(ArgumentError, match="done twice"):
        _create_once(tmp_path / "r.json", "{}")


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "line 2: not JSON"),
        ('["a"]', 'line 2: a request must be a JSON object, got ["a"]'),
        ('{"conditions": {}}', "line 2: no 'seed'"),
        ('{"conditions": {}, "seed": 1, "colour": 2}', "line 2: unknown key 'colour'"),
        ('{"conditions": {"sound": "x.wav"}, "seed": 1}', "line 2: no model for modality 'sound'"),
        ('{"conditions": {}, "seed": -1}', "line 2: seed must be in"),
        ('{"conditions": {}, "seed": 1, "weights": {"toy_a": "big"}}', "line 2: weight of 'toy_a' must be a number"),
        ('{"conditions": {}, "seed": 1, "steps": 5000}', "line 2: steps=5000"),
        ('{"id": "../x", "conditions": {}, "seed": 1}', "line 2: id must be"),
        ('{"id": "r0", "conditions": {}, "seed": 1}', "line 2: id 'r0' is already line 1's"),
    ],
)
def test_a_bad_line_is_named_before_any_model_loads(composition, tmp_path, line, message):
    weights = next((composition / "toy_a").rglob("*.safetensors"))
    weights.write_bytes(b"not weights")  # loading would fail: the request file must be refused first
    path = tmp_path / "requests.jsonl"
    path.write_text('{"id": "r0", "conditions": {}, "seed": 0}\n' + line + "\n")
    result = CliRunner().invoke(cli, ["generate", "--model", str(composition), "--requests", str(path),
                                      "--out-dir", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"{path} {message}" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out" / "manifest.jsonl").exists()


def test_a_bad_condition_names_its_request_before_any_image(composition, tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_text('{"id": "ok", "conditions": {}, "seed": 0}\n'
                    f'{{"id": "bad", "conditions": {{"toy_a": "{tmp_path / "missing.png"}"}}, "seed": 0}}\n')
    result = CliRunner().invoke(cli, ["generate", "--model", str(composition), "--requests", str(path),
                                      "--out-dir", str(tmp_path / "out")])
    assert result.exit_code == 2 and "request 'bad' (line 2)" in result.output, result.output
    assert not list((tmp_path / "out").glob("*.png"))


def test_requests_take_no_single_request_options(composition, tmp_path):
    result = CliRunner().invoke(cli, ["generate", "--model", str(composition), "--requests", str(tmp_path / "r"),
                                      "--cond", "toy_a=x.png", "--out-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--requests takes --out-dir" in result.output
