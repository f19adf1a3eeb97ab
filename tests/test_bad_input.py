"""A generated corpus of bad inputs against ``mcdm generate`` (in-process) and the Python API.

Every case must end in one line that names the input (exit status 2 for what was passed, 1 for what was found)
or an MCDMError from the API, and leave no output file. The cases are drawn by hypothesis (derandomised, so
the corpus is the same on every run); each test counts what it tried and the last test prints the tally.
"""

import math
import os
import shutil
import stat
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mcdm.checkpoint import write_checksums
from mcdm.cli import cli
from mcdm.errors import MCDMError

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "synthfaces-32"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "inputs" / "face-0"
MODALITIES = ("sketch", "segmentation", "text")
TRIED: Counter = Counter()
CATEGORIES = 11  # the tests below that add to TRIED
CORPUS = settings(derandomize=True, database=None, deadline=None, max_examples=25,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """Bad files to point at: a read-only folder, a file posing as a folder, broken images and masks."""
    root = tmp_path_factory.mktemp("bad-input")
    (root / "readonly").mkdir()
    (root / "readonly").chmod(stat.S_IRUSR | stat.S_IXUSR)
    (root / "a-file").write_text("not a folder")
    (root / "folder.png").mkdir()
    (root / "text.png").write_text("this is not a PNG")
    (root / "empty.png").write_bytes(b"")
    Image.fromarray(np.full((32, 48), 200, np.uint8)).save(root / "wide.png")
    Image.fromarray(np.full((32, 32, 3), (1, 2, 3), np.uint8)).save(root / "off-palette.png")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8), "RGB").save(root / "rgb-sketch.png")
    yield root
    (root / "readonly").chmod(stat.S_IRWXU)


def run_cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result.exit_code, result.output


def assert_one_line_refusal(code: int, output: str, names: str, out: Path | None = None, codes=(1, 2)) -> None:
    assert code in codes, output
    assert output.startswith("Error:") or "Error:" in output.splitlines()[-1], output
    error_lines = [line for line in output.splitlines() if line.strip() and not line.startswith("Usage")
                   and not line.startswith("Try ")]
    assert len(error_lines) == 1 and "Traceback" not in output, output
    assert names.lower() in output.lower(), f"{names!r} not named in: {output}"
    if out is not None:
        assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def generate(tmp_path, *args):
    """``mcdm generate`` writing into a fresh folder (hypothesis runs many examples in one tmp_path)."""
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "never.png"
    return (*run_cli("generate", "--steps", 1, "--num-images", 1, "--out", out, *args), out)


BAD_NUMBERS = st.sampled_from(["nan", "inf", "-inf", "1e30", "-1e30", "1e400", "101", "-100.5", "abc", "", "1,5",
                               "0x10", "--", "NaN"])


@CORPUS
@given(name=st.sampled_from(MODALITIES), value=BAD_NUMBERS)
def test_bad_weights(tmp_path, name, value):
    TRIED["weights"] += 1
    code, output, out = generate(tmp_path, "--cond", f"{name}=x", "--weight", f"{name}={value}")
    assert_one_line_refusal(code, output, "weight", out, codes=(2,))


@CORPUS
@given(steps=st.one_of(st.integers(max_value=0), st.integers(min_value=1001, max_value=10**12),
                       st.sampled_from(["1.5", "many", "", "1e3"])))
def test_bad_steps(tmp_path, steps):
    TRIED["steps"] += 1
    code, output, out = generate(tmp_path, "--steps", steps)
    assert_one_line_refusal(code, output, "steps", out, codes=(2,))


@CORPUS
@given(seed=st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32, max_value=2**80),
                      st.sampled_from(["0.5", "seed", ""])))
def test_bad_seeds(tmp_path, seed):
    TRIED["seeds"] += 1
    code, output, out = generate(tmp_path, "--seed", seed)
    assert_one_line_refusal(code, output, "seed", out, codes=(2,))


@CORPUS
@given(count=st.one_of(st.integers(max_value=0), st.integers(min_value=10**6, max_value=10**15),
                       st.sampled_from(["two", "1.0", ""])))
def test_bad_image_counts(tmp_path, count):
    TRIED["counts"] += 1
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "never.png"
    code, output = run_cli("generate", "--steps", 1, "--num-images", count, "--out", out)
    assert_one_line_refusal(code, output, "num", out, codes=(2,))


@CORPUS
@given(device=st.one_of(st.sampled_from(["", " ", "meta", "foo", "cuda:x", "cpu:", "gpu", "cuda", "cuda:7", "mps"]),
                        st.text(min_size=1, max_size=12).filter(lambda s: s.strip() != "cpu")))
def test_bad_devices(tmp_path, device):
    TRIED["devices"] += 1
    code, output, out = generate(tmp_path, "--device", device)
    assert_one_line_refusal(code, output, "device", out, codes=(2,))


@CORPUS
@given(scheduler=st.one_of(st.sampled_from(["", " ", "DDIM", "heun", "dpm", "lms"]),
                           st.text(max_size=12).filter(lambda s: s not in ("ddpm", "ddim", "dpm++", "euler"))))
def test_bad_schedulers(tmp_path, scheduler):
    TRIED["schedulers"] += 1
    code, output, out = generate(tmp_path, "--scheduler", scheduler)
    assert_one_line_refusal(code, output, "scheduler", out, codes=(2,))


@CORPUS
@given(override=st.sampled_from([
    ("steps=many", "steps"), ("bogus=1", "bogus"), ("modalities.sketch.weight=heavy", "weight"),
    ("modalities.sketch.baseline=mine", "baseline"), ("modalities.nope.path=x", "nope model"), ("scheduler=", "scheduler"),
    ("prior=no-such-folder", "no-such-folder"), ("modalities.text.path=missing", "text model"), ("steps=0", "steps"),
    ("modalities.text.weight=nan", "weight"), ("corrector_size=-1", "corrector"), ("prior_mixture.nope=1.0", "prior_mixture"),
    ("modalities.sketch.start=x", "start"), ("=1", "KEY=VALUE"), ("steps", "KEY=VALUE"),
]))
def test_bad_overrides(tmp_path, override):
    TRIED["overrides"] += 1
    value, names = override
    code, output, out = generate(tmp_path, "--set", value, "--cond", "text=She has red hair.")
    assert_one_line_refusal(code, output, names, out)


# root writes into a mode-0500 folder regardless: there, /sys and /proc stand for read-only places
UNWRITABLE = ["/sys/x.png", "/proc/x.png"] + ([] if os.geteuid() == 0 else ["readonly/x.png"])


@CORPUS
@given(where=st.sampled_from(["a-file/x.png", "a-file/deeper/x.png", "folder.png", "x.jpg", "x", *UNWRITABLE]))
def test_bad_output_paths(workdir, where):
    TRIED["paths"] += 1
    out = Path(where) if where.startswith("/") else workdir / where
    started = time.perf_counter()
    code, output = run_cli("generate", "--steps", 1, "--num-images", 1, "--out", out)
    assert_one_line_refusal(code, output, "--out", None, codes=(2,))
    assert time.perf_counter() - started < 1.0  # refused from the arguments: no model loaded


@CORPUS
@given(case=st.sampled_from([
    ("sketch", "no-such.png", "sketch"), ("sketch", "text.png", "sketch"), ("sketch", "empty.png", "sketch"),
    ("sketch", "wide.png", "square"), ("segmentation", "off-palette.png", "segmentation"),
    ("segmentation", "text.png", "segmentation"), ("segmentation", "no-such.png", "segmentation"),
    ("text", "", "text"), ("text", "   ", "text"), ("text", "hair " * 200, "text"), ("nope", "x", "nope"),
    ("Sketch", "x.png", "Sketch"), ("", "x", "NAME=VALUE"),
]))
def test_bad_conditions(workdir, tmp_path, case):
    TRIED["images, masks and captions"] += 1
    name, value, names = case
    value = str(workdir / value) if value.endswith(".png") else value
    code, output, out = generate(tmp_path, "--cond", f"{name}={value}")
    assert_one_line_refusal(code, output, names, out, codes=(2,))


@pytest.fixture(scope="module")
def broken_folders(tmp_path_factory):
    """Copies of the shipped composition, each damaged in one way, by name -> (folder, what the error names)."""
    root = tmp_path_factory.mktemp("broken")
    damage = {
        "checksum mismatch": (lambda f: (f / "composition.yaml").write_text("name: x\nprior: prior\n"), "SHA-256"),
        "no composition": (lambda f: (f / "composition.yaml").unlink(), "composition.yaml"),
        "binary yaml": (lambda f: _rewrite(f, "composition.yaml", b"\x00\xff\x00"), "UTF-8"),
        "yaml list": (lambda f: _rewrite(f, "composition.yaml", b"- prior\n"), "list"),
        "python tag": (lambda f: _rewrite(f, "composition.yaml", b"prior: !!python/name:os.system\n"), "constructor"),
        "no schedule": (lambda f: _remove(f, "prior/scheduler_config.json"), "scheduler_config.json"),
        "bogus schedule": (lambda f: _rewrite(f, "prior/scheduler_config.json",
                                              b'{"num_train_timesteps": 1000, "beta_schedule": "cubic"}'), "beta_schedule"),
        "pickle weights": (lambda f: _rename(f, "sketch/unet/diffusion_pytorch_model.safetensors",
                                             "sketch/unet/diffusion_pytorch_model.bin"), "pickle"),
        "empty weights": (lambda f: _rewrite(f, "sketch/unet/diffusion_pytorch_model.safetensors", b""), "safetensors"),
        "unknown denoiser": (lambda f: _rewrite(f, "prior/mcdm.json", b'{"denoiser": "warp"}'), "warp"),
        "checksums folder": (lambda f: ((f / "SHA256SUMS").unlink(), (f / "SHA256SUMS").mkdir()), "SHA256SUMS"),
    }
    folders = {}
    for name, (alter, names) in damage.items():
        folder = shutil.copytree(SHIPPED, root / name.replace(" ", "-"))
        alter(folder)
        folders[name] = (folder, names)
    return folders


def _rewrite(folder, rel, content):
    (folder / rel).write_bytes(content)
    write_checksums(folder)  # the content, not the checksum, is at fault


def _remove(folder, rel):
    (folder / rel).unlink()
    write_checksums(folder)


def _rename(folder, old, new):
    (folder / old).rename(folder / new)
    write_checksums(folder)


@CORPUS
@given(name=st.sampled_from(["checksum mismatch", "no composition", "binary yaml", "yaml list", "python tag",
                             "no schedule", "bogus schedule", "pickle weights", "empty weights", "unknown denoiser",
                             "checksums folder"]))
def test_corrupted_model_folders(broken_folders, tmp_path, name):
    TRIED["model folders"] += 1
    folder, names = broken_folders[name]
    code, output, out = generate(tmp_path, "--model", folder, "--cond", "text=She has red hair.")
    assert_one_line_refusal(code, output, names, out)


@pytest.fixture(scope="module")
def composer():
    from mcdm.compose import Composer

    return Composer.from_pretrained("synthfaces-32")


API_CASES = st.one_of(
    st.fixed_dictionaries({"steps": st.one_of(st.integers(max_value=0), st.integers(min_value=1001),
                                              st.floats(), st.just("10"), st.just(True))}),
    st.fixed_dictionaries({"seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32), st.floats(),
                                             st.just("0"))}),
    st.fixed_dictionaries({"num_images": st.one_of(st.integers(max_value=0), st.integers(min_value=10**7),
                                                   st.floats(), st.just("4"))}),
    st.fixed_dictionaries({"weights": st.dictionaries(st.just("text"), st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda w: not math.isfinite(w) or abs(w) > 100),
        st.just("1"), st.just(None)), min_size=1)}),
    st.fixed_dictionaries({"weights": st.dictionaries(st.sampled_from(["sketch", "nope", ""]), st.just(1.0),
                                                      min_size=1)}),
    st.fixed_dictionaries({"scheduler": st.text(max_size=8).filter(lambda s: s not in ("ddpm", "ddim", "dpm++",
                                                                                        "euler"))}),
    st.fixed_dictionaries({"conditions": st.sampled_from([
        {"text": ""}, {"text": 3}, {"text": None}, {"sketch": str(EXAMPLE / "missing.png")},
        {"sketch": np.full((8, 8), np.nan)}, {"sketch": np.zeros((3, 4, 5, 6))}, {"segmentation": np.full((32, 32), 99)},
        {"segmentation": np.full((32, 32), 2.5)}, {"nope": "x"}, [], [{"text": "a"}, {"sketch": str(EXAMPLE / "sketch.png")}],
    ])}),
)


@CORPUS
@given(case=API_CASES)
def test_the_python_api_refuses_with_an_mcdm_error(composer, case):
    TRIED["python api"] += 1
    case = dict(case)
    conditions = case.pop("conditions", {"text": "She has red hair."})
    with pytest.raises(MCDMError) as raised:
        composer.generate_tensor(conditions, progress=False, **{"steps": 1, **case})
    message = str(raised.value)
    assert "\n" not in message and message.strip()
    key = next(iter(case), None)
    named = {"steps": "steps", "seed": "seed", "num_images": "num_images", "weights": "weight",
             "scheduler": "scheduler", None: ""}[key]
    assert named in message, message


def test_a_malformed_argument_is_refused_in_under_a_second_without_torch(tmp_path):
    """From a fresh interpreter: the refusal comes before torch (or any model) is imported."""
    import subprocess
    import sys

    code = ("import sys, time\n"
            "from click.testing import CliRunner\n"
            "from mcdm.cli import cli\n"
            "started = time.perf_counter()\n"
            f"result = CliRunner().invoke(cli, ['generate', '--weight', 'text=nan', '--cond', 'text=x', "
            f"'--out', {str(tmp_path / 'x.png')!r}])\n"
            "elapsed = time.perf_counter() - started\n"
            "assert result.exit_code == 2, result.output\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print(elapsed)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    seconds = float(done.stdout.strip().splitlines()[-1])
    print(f"malformed --weight refused in {seconds * 1000:.0f} ms")
    assert seconds < 1.0


def test_zz_the_corpus_holds_at_least_200_cases():
    print("bad inputs tried: " + ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items())) + f"; total {sum(TRIED.values())}")
    if len(TRIED) < CATEGORIES:
        pytest.skip("run with the whole file to count the corpus")
    assert sum(TRIED.values()) >= 200
