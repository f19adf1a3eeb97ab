import subprocess
import sys

import pytest
from click.testing import CliRunner

from mcdm.data.cli import data


def run(*args: str):
    return CliRunner().invoke(data, ["synth", *args])


def test_synth_writes_a_dataset(tmp_path):
    result = run("--out", str(tmp_path / "d"), "--n", "3", "--size", "32", "--seed", "1", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "CelebA-HQ-img" / "0.png").is_file()
    assert "wrote 3 faces" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--size", "31"], "--size"), (["--size", "257"], "--size"), (["--n", "0"], "--n"), (["--seed", "-1"], "--seed")],
)
def test_bad_arguments_get_one_line_usage_errors(tmp_path, args, message):
    result = run("--out", str(tmp_path / "d"), *args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "d").exists()


def test_existing_non_empty_directory_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("")
    result = run("--out", str(tmp_path / "d"), "--n", "1")
    assert result.exit_code == 1 and "already exists" in result.output


def test_importing_the_cli_stays_light():
    code = (
        "import sys, mcdm.data.cli; "
        "heavy = [m for m in ('torch', 'cv2', 'controlnet_aux', 'numpy', 'PIL') if m in sys.modules]; "
        "print(heavy); sys.exit(bool(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_synth_variant_choices_mirror_the_variants(tmp_path):
    from mcdm.data.cli import VARIANT_NAMES
    from mcdm.data.variants import VARIANTS

    assert VARIANT_NAMES == tuple(VARIANTS)
    result = CliRunner().invoke(data, ["synth", "--out", str(tmp_path / "d"), "--n", "4", "--size", "32",
                                       "--variant", "studio", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert '"variant": "studio"' in (tmp_path / "d" / "synthfaces.json").read_text()
