"""Model folders handed to mcdm: never a pickle, tampering always noticed, broken weights and configs refused.

Each case alters a copy of a tiny saved composition the way a careless or hostile hand would, and asserts a
one-line error (or the documented warning) and no generated file.
"""

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from mcdm.checkpoint import load_model, verify_checksums, write_checksums
from mcdm.cli import cli
from mcdm.compose import Composer
from mcdm.errors import CheckpointError, ConfigError, UnverifiedModelWarning

UNET = Path("toy_a") / "unet"
WEIGHTS = UNET / "diffusion_pytorch_model.safetensors"


@pytest.fixture
def composition(tmp_path, make_model):
    """composition.yaml + prior + one toy model + SHA256SUMS, as the shipped folders are laid out."""
    folder = tmp_path / "toy-composition"
    folder.mkdir()
    shutil.move(make_model(None, name="prior"), folder / "prior")
    shutil.move(make_model("toy_a", seed=1, name="toy_a"), folder / "toy_a")
    config = {"name": "toy", "prior": "prior", "steps": 2, "modalities": {"toy_a": {"path": "toy_a"}}}
    (folder / "composition.yaml").write_text(yaml.safe_dump(config))
    write_checksums(folder)
    return folder


def generate(folder, tmp_path, *extra):
    """``mcdm generate`` on ``folder``: (exit code, output, whether an image was written)."""
    out = tmp_path / "out.png"
    result = CliRunner().invoke(cli, ["generate", "--model", str(folder), "--steps", "1", "--num-images", "1",
                                      "--out", str(out), *extra])
    return result.exit_code, result.output, out.exists()


def assert_refused(folder, tmp_path, message, *extra):
    code, output, written = generate(folder, tmp_path, *extra)
    assert code == 1, output
    assert message in output
    assert output.strip().count("\n") == 0 and "Traceback" not in output  # one line
    assert not written


def test_an_intact_composition_generates(composition, tmp_path):
    code, output, written = generate(composition, tmp_path)
    assert code == 0 and written, output


def test_a_pickle_shard_behind_a_safetensors_index_is_never_opened(composition, tmp_path, monkeypatch, plugins):
    weights = load_file(composition / WEIGHTS)
    (composition / WEIGHTS).unlink()
    torch.save(weights, composition / UNET / "diffusion_pytorch_model-00001-of-00001.bin")
    index = {"metadata": {}, "weight_map": {k: "diffusion_pytorch_model-00001-of-00001.bin" for k in weights}}
    (composition / UNET / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    (composition / "toy_a" / "placeholder.safetensors").write_bytes(b"")  # passed the old "any *.safetensors"
    write_checksums(composition)  # the attacker rewrote the checksums too

    def refuse(*args, **kwargs):
        raise AssertionError("a pickle was opened")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    with pytest.raises(CheckpointError, match=r"diffusion_pytorch_model-00001-of-00001.bin.*pickle-format"):
        load_model(composition / "toy_a", plugins)
    assert_refused(composition, tmp_path, "pickle-format weight file")


def test_a_shard_index_may_only_name_safetensors_files_inside_the_component(composition, tmp_path, plugins):
    weights = load_file(composition / WEIGHTS)
    (composition / WEIGHTS).unlink()
    save_file(weights, composition / "toy_a" / "elsewhere.safetensors")
    index = {"weight_map": {k: "../elsewhere.safetensors" for k in weights}}
    (composition / UNET / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="every shard must be a .safetensors file in"):
        load_model(composition / "toy_a", plugins)


def test_an_empty_weights_file_is_refused_naming_it(composition, tmp_path, plugins):
    (composition / WEIGHTS).write_bytes(b"")
    with pytest.raises(CheckpointError, match="diffusion_pytorch_model.safetensors' is not a readable safetensors"):
        load_model(composition / "toy_a", plugins)


def test_nan_weights_are_refused_naming_the_file(composition, tmp_path, plugins):
    weights = load_file(composition / WEIGHTS)
    name = sorted(weights)[0]
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, composition / WEIGHTS)
    with pytest.raises(CheckpointError, match=rf"diffusion_pytorch_model.safetensors': tensor '{name}' holds NaN"):
        load_model(composition / "toy_a", plugins)
    write_checksums(composition)
    assert_refused(composition, tmp_path, "holds NaN or infinite values")


def test_a_folder_given_by_path_without_checksums_loads_with_one_warning(composition, tmp_path):
    (composition / "SHA256SUMS").unlink()
    with pytest.warns(UnverifiedModelWarning, match="has no SHA256SUMS"):
        Composer.from_pretrained(composition)
    with pytest.raises(CheckpointError, match="has no SHA256SUMS"):
        Composer.from_pretrained(composition, require_checksums=True)
    assert_refused(composition, tmp_path, "has no SHA256SUMS", "--require-checksums")


def test_the_command_prints_the_warning_as_one_line(composition, tmp_path):
    import subprocess
    import sys

    (composition / "SHA256SUMS").unlink()
    result = subprocess.run([sys.executable, "-m", "mcdm.cli", "generate", "--model", str(composition), "--steps",
                             "1", "--num-images", "1", "--out", str(tmp_path / "x.png")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    warning_lines = [line for line in result.stderr.splitlines() if "SHA256SUMS" in line]
    assert len(warning_lines) == 1 and warning_lines[0].startswith("warning: ")


def test_a_composition_found_by_name_must_carry_complete_checksums(composition, monkeypatch):
    monkeypatch.setenv("MCDM_PRETRAINED_DIR", str(composition.parent))
    Composer.from_pretrained(composition.name)
    (composition / "notes.txt").write_text("added later")
    with pytest.raises(CheckpointError, match="notes.txt' not listed in"):
        Composer.from_pretrained(composition.name)
    with pytest.warns(UnverifiedModelWarning, match="notes.txt' not listed"):
        Composer.from_pretrained(composition)  # by path: reported, not refused
    (composition / "notes.txt").unlink()
    (composition / "SHA256SUMS").unlink()
    with pytest.raises(CheckpointError, match="has no SHA256SUMS"):
        Composer.from_pretrained(composition.name)


def test_a_model_folder_outside_the_composition_is_checked_on_its_own(composition, tmp_path, monkeypatch):
    outside = shutil.copytree(composition / "toy_a", tmp_path / "outside-toy")
    overrides = [f"modalities.toy_a.path={outside}"]
    with pytest.warns(UnverifiedModelWarning, match="outside-toy' has no SHA256SUMS"):
        Composer.from_pretrained(composition, overrides)
    monkeypatch.setenv("MCDM_REQUIRE_CHECKSUMS", "1")
    with pytest.raises(CheckpointError, match="outside-toy' has no SHA256SUMS"):
        Composer.from_pretrained(composition, overrides)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "lists no files"),
        (b"\xff\xfe\x00binary", "is not UTF-8 text"),
        (b"not a checksum line\n", "line 1 is not '<sha256>  <relative path>'"),
        (b"0" * 64 + b"  ../../etc/passwd\n", "line 1 is not"),
    ],
)
def test_a_damaged_checksum_file_is_an_error(composition, tmp_path, content, message):
    (composition / "SHA256SUMS").write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        verify_checksums(composition, required=False)
    assert_refused(composition, tmp_path, message.split("'")[0])


def test_a_checksum_file_that_is_a_folder_is_an_error(composition, tmp_path):
    (composition / "SHA256SUMS").unlink()
    (composition / "SHA256SUMS").mkdir()
    assert_refused(composition, tmp_path, "SHA256SUMS' is a folder, not a file")


MALFORMED = [
    ("composition.yaml", b"\x89PNG\r\n\x1a\n\x00\x00", "is not UTF-8 text"),
    ("composition.yaml", b"prior: [prior\n", "is not valid YAML (line 2"),
    ("composition.yaml", b"- prior\n- toy_a\n", "holds a YAML list"),
    ("composition.yaml", b"prior: !!python/object/apply:os.system [echo pwned]\n", "could not determine a constructor"),
    ("composition.yaml", b"prior: prior\nmodalities: 3\n", "at key 'modalities'"),
    ("composition.yaml", b"", "is empty"),
    ("prior/scheduler_config.json", b"\xff\xff", "is not UTF-8 text"),
    ("prior/scheduler_config.json", b"[1000]", "holds a JSON list"),
    ("prior/scheduler_config.json", b'{"beta_schedule": "linear"}', "key 'num_train_timesteps' must be an integer"),
    ("prior/scheduler_config.json", b'{"num_train_timesteps": 1000, "beta_schedule": "bogus"}',
     "key 'beta_schedule' ('bogus')"),
    ("prior/mcdm.json", b"{not json", "is not valid JSON (line 1"),
    ("prior/mcdm.json", b'["unet"]', "holds a JSON list"),
    ("toy_a/unet/config.json", b"\x00\x01", "config.json' is not valid JSON"),
]


@pytest.mark.parametrize("name, content, message", MALFORMED, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(MALFORMED)])
def test_a_malformed_config_file_is_one_line_naming_it(composition, tmp_path, name, content, message):
    (composition / name).write_bytes(content)
    write_checksums(composition)  # the file is what its author meant: the content, not the checksum, is at fault
    code, output, written = generate(composition, tmp_path)
    assert code == (2 if name == "composition.yaml" else 1) and not written, output  # configuration, or model files
    assert message in output and name.split("/")[-1] in output
    assert output.strip().count("\n") == 0


def test_a_malformed_training_config_is_one_line(tmp_path):
    config = tmp_path / "train.yaml"
    for content, message in [(b"steps: [1\n", "is not valid YAML"), (b"", "is empty"),
                             (b"steps: !!python/name:os.system\n", "could not determine a constructor"),
                             (b"- 1\n", "holds a YAML list")]:
        config.write_bytes(content)
        result = CliRunner().invoke(cli, ["train", "denoiser", str(config), f"out={tmp_path / 'run'}"])
        assert result.exit_code == 2 and message in result.output, result.output
        assert result.output.strip().count("\n") == 0
    assert not (tmp_path / "run").exists()


SHIPPED = Path(__file__).resolve().parents[1] / "pretrained"


def test_nothing_calls_a_pickle_loader(monkeypatch, composition, tmp_path):
    """Every shipped model, the judges, the CLIP and the toy composition load and sample with the loaders gone."""
    def refuse(*args, **kwargs):
        raise AssertionError("a pickle loader was called")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    from mcdm.eval.judges import Judges
    from mcdm_text.clip import ClipScorer

    shipped = Composer.from_pretrained("synthfaces-32")
    example = Path(__file__).resolve().parents[1] / "examples" / "inputs" / "face-0"
    images = shipped.generate_tensor({"sketch": example / "sketch.png", "text": "She has red hair."}, steps=1,
                                     progress=False)
    assert images.shape == (1, 3, 32, 32) and torch.isfinite(images).all()
    Judges.load(SHIPPED / "judges-32", require_checksums=True)
    ClipScorer.load(SHIPPED / "synthfaces-32" / "clip")
    toy = Composer.from_pretrained(composition).generate_tensor({"toy_a": np.zeros((16, 16))}, steps=1,
                                                                  progress=False)
    assert toy.shape == (1, 3, 16, 16)
