"""An installed mcdm works like the checkout: the README's user install, run as written, builds every wheel and
installs them into a fresh environment; then ``mcdm demo``, ``generate``, ``plugins`` and the README's Python
snippet run there, from a folder outside the checkout, with no variable set.

Offline, in about a minute: pip reaches no index (``PIP_NO_INDEX``) and builds with this environment's
setuptools (no build isolation); the third-party dependencies (torch, ...) come from this environment through
``PYTHONPATH``, as a folder of links to its site-packages that leaves out every mcdm distribution. So mcdm, its
plugins and its models can only come from the wheels, which are built from a copy of the sources (in-tree
builds would leave ``build/`` folders, and stale files in them, in the checkout).
"""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "mcdm", "examples/inputs", "plugins", "models", "pretrained")
PLUGINS = {"sketch", "segmentation", "text", "joint"}

pytestmark = pytest.mark.install


def readme_block(heading: str, fence: str | None = None) -> str:
    """The first code block under a README heading: indented (shell) or fenced with ``fence`` (```python)."""
    section = ROOT.joinpath("README.md").read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    if fence:
        return re.search(rf"```{fence}\n(.*?)```", section, re.S).group(1)
    return re.search(r"\n\n((?: {4}.*\n)+)", section).group(1).replace("\n    ", "\n")[4:]


def third_party_site_packages(dest: Path) -> Path:
    """Links to every entry of this environment's site-packages except the mcdm distributions' files."""
    site = Path(sysconfig.get_paths()["purelib"])
    ours = {f.parts[0] for dist in importlib.metadata.distributions(path=[str(site)])
            if dist.metadata["Name"].lower().startswith("mcdm") for f in dist.files or ()}
    dest.mkdir()
    for entry in site.iterdir():
        if entry.name not in ours and entry.suffix != ".pth":
            (dest / entry.name).symlink_to(entry)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Run the README's user install from a copy of the sources, with a fresh HOME."""
    tmp = tmp_path_factory.mktemp("install")
    src, home = tmp / "src", tmp / "home"
    src.mkdir()
    home.mkdir()
    for name in SOURCES:  # links stay links, as in a checkout
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    venv_bin = str(Path(sys.executable).parent)
    # one torch thread, as in conftest: as fast alone, and far faster when other work shares the cores
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "MCDM_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), PYTHONPATH=str(third_party_site_packages(tmp / "deps")), PIP_NO_INDEX="1",
               PIP_NO_BUILD_ISOLATION="0", PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PATH=os.pathsep.join([str(Path(sys._base_executable).parent), *(
                   p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)]))
    output = run(["bash", "-euo", "pipefail", "-c", readme_block("Installing it elsewhere")], cwd=src, env=env,
                 timeout=600)
    return SimpleNamespace(src=src, home=home, env=env, bin=home / ".venvs" / "mcdm" / "bin", output=output)


def run(args: list, *, cwd: Path, env: dict, timeout: int = 300) -> str:
    """Run a command under the usual umask; its output, or a failure showing it."""
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, umask=0o022)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_the_readme_install_builds_every_wheel_and_runs_the_demo_outside_the_checkout(installed):
    wheels = {p.name.split("-")[0] for p in (installed.src / "wheels").glob("*.whl")}
    # plugins/mcdm-* includes mcdm-diffusers, built but not in mcdm[all] (its [sd] extra brings transformers)
    assert wheels == {"mcdm", "mcdm_sketch", "mcdm_segmentation", "mcdm_text", "mcdm_joint", "mcdm_diffusers",
                      "mcdm_models_synthfaces"}
    assert re.search(r"wrote mcdm-demo\.png \(\d+ s\)", installed.output)
    assert (installed.home / "mcdm-demo.png").is_file()


def test_the_engine_plugins_and_models_come_from_the_wheels_alone(installed):
    code = """
import importlib.util, json
import mcdm, mcdm_joint, mcdm_models_synthfaces, mcdm_segmentation, mcdm_sketch, mcdm_text
from mcdm.pretrained import REPO_PRETRAINED, resolve
modules = (mcdm, mcdm_joint, mcdm_models_synthfaces, mcdm_segmentation, mcdm_sketch, mcdm_text)
print(json.dumps({"paths": [m.__file__ for m in modules] + [str(resolve(n)) for n in ("synthfaces-32", "judges-32")],
                  "toy": bool(importlib.util.find_spec("mcdm_toy")), "checkout": REPO_PRETRAINED.is_dir()}))
"""
    found = json.loads(run([installed.bin / "python", "-c", code], cwd=installed.home, env=installed.env))
    site = str(installed.bin.parent / "lib")
    assert all(path.startswith(site) for path in found["paths"]), found
    assert not found["toy"] and not found["checkout"]  # neither the checkout nor its test plugin is importable


def test_mcdm_plugins_lists_every_builtin_and_nothing_broken(installed):
    listing = json.loads(run([installed.bin / "mcdm", "plugins"], cwd=installed.home, env=installed.env))
    assert set(listing["modalities"]) == PLUGINS and listing["broken"] == {}
    assert set(listing["denoisers"]) == {"unet", "unet_text", "unet_joint"}


def test_mcdm_generate_writes_a_grid_and_one_readable_png_per_image(installed):
    output = run([installed.bin / "mcdm", "generate", "--cond", "text=She is smiling.", "--steps", 2, "--num-images", 2,
                  "--out", "grid.png", "--out-dir", "each"], cwd=installed.home, env=installed.env)
    assert "wrote 2 image(s) to grid.png and each/ (000.png to 001.png)" in output
    for name in ("grid.png", "each/000.png", "each/001.png"):
        assert (installed.home / name).stat().st_mode & 0o777 == 0o644


def test_the_readme_python_snippet_runs_from_any_folder(installed):
    (installed.home / "snippet.py").write_text(readme_block("From Python", fence="python"))
    run([installed.bin / "python", "snippet.py"], cwd=installed.home, env=installed.env)
    assert (installed.home / "face.png").is_file()
