"""docs/writing-a-plugin.md, run for real: every ``bash`` block of the page, in order, on a fresh copy.

The blocks run verbatim in one bash process whose working folder stands in for the repository root (``examples``
and ``configs`` link to the real ones; everything is written under tmp_path). Two shell functions keep it fast and
leave the shared environment alone:

- ``pip install -e DIR`` installs the copied plugin into a temporary site folder instead (pip, no network, no
  dependencies); that folder is on PYTHONPATH, so ``importlib.metadata`` finds the copy's entry point exactly as
  it finds an installed plugin's;
- ``mcdm train`` gets a tiny architecture and 3 steps appended, ``mcdm generate`` 2 sampling steps and one image.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "writing-a-plugin.md"

TINY = ("steps=3 batch_size=4 data.length=64 sample_every=0 checkpoint_every=3 mixed_precision=fp32 "
        "'denoiser.block_out_channels=[8,16]' denoiser.layers_per_block=1 denoiser.attention=false")

PREAMBLE = f"""
set -euo pipefail
TINY=({TINY})
pip() {{
  if [ "$#" != 3 ] || [ "$1 $2" != "install -e" ]; then
    echo "the doc may only 'pip install -e DIR', got: pip $*" >&2; return 1
  fi
  python -m pip install --quiet --no-deps --no-build-isolation --no-index --target "$SITE" "$3"
}}
mcdm() {{
  case "$1" in
    train) command mcdm "$@" "${{TINY[@]}}" ;;
    generate) command mcdm "$@" --steps 2 --num-images 1 ;;
    *) command mcdm "$@" ;;
  esac
}}
set -x
"""


def doc_blocks() -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def environment(site: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MCDM_LOAD_PLUGINS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), SITE=str(site), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               MCDM_STRICT_PLUGINS="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return env


def test_the_doc_names_every_hook_and_the_whole_modality_contract():
    import mcdm.hookspecs
    from mcdm.modality import Modality

    text = DOC.read_text()
    hooks = [n for n in dir(mcdm.hookspecs) if n.startswith("register_")]
    members = ["name", "prepare", "null_condition", "weight_map", "denoiser_type", "denoiser_config",
               "condition_from_sample", "input_spec", "face_part", "combines", "caption_scorer"]
    assert set(members) >= {n for n in vars(Modality) if not n.startswith("_")}
    for name in hooks + members + ["MCDM_STRICT_PLUGINS", "ModalityConformance", "mcdm plugins"]:
        assert name in text, f"docs/writing-a-plugin.md does not mention {name}"


def test_the_doc_from_example_plugin_to_composed_image(tmp_path):
    work, site = tmp_path / "work", tmp_path / "site"
    work.mkdir()
    for name in ("examples", "configs", "pretrained"):  # what the doc's commands read from the repository root
        (work / name).symlink_to(REPO / name, target_is_directory=True)
    blocks = doc_blocks()
    assert len(blocks) >= 5, "expected the doc's steps as bash blocks"
    script = PREAMBLE + "\n".join(blocks)
    env = environment(site)
    result = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]

    # renamed: nothing called thumbnail is left in the copy, and its entry point is the new one
    copy = work / "mcdm-tinythumb"
    leftovers = [p for p in copy.rglob("*") if p.is_file() and "build" not in p.parts and ".egg-info" not in str(p)
                 and ("thumbnail" in str(p.relative_to(copy)) or "thumbnail" in p.read_text(errors="ignore"))]
    assert leftovers == []
    assert 'tinythumb = "mcdm_tinythumb"' in (copy / "pyproject.toml").read_text()
    assert "GRID = 4 " in (copy / "mcdm_tinythumb" / "modality.py").read_text()
    assert re.search(r"\d+ passed", output) and not re.search(r"\d+ failed", output)  # the copied conformance tests

    # found through its entry point, from the temporary site folder only
    mcdm = str(Path(sys.executable).parent / "mcdm")
    listing = json.loads(subprocess.run([mcdm, "plugins"], cwd=work, env=env, capture_output=True, text=True,
                                        check=True).stdout)
    assert listing["modalities"]["tinythumb"]["plugin"] == "tinythumb"
    assert listing["broken"] == {}

    # trained, composed with the shipped prior, sketch, segmentation and text models, and sampled
    manifest = json.loads((work / "runs" / "tinythumb" / "model" / "mcdm.json").read_text())
    assert manifest["modality"] == "tinythumb" and manifest["denoiser_config"]["cond_channels"] == 4
    with Image.open(work / "faces.png") as image:
        assert image.size == (32, 32)
    assert "wrote 1 image(s) to faces.png" in output

    # the two other kinds: a label and a token sequence, trained and composed with the shipped models
    for name, kind in (("hair", "unet_hair"), ("tags", "unet_tags")):
        manifest = json.loads((work / "runs" / name / "model" / "mcdm.json").read_text())
        assert manifest["modality"] == name and manifest["denoiser"] == kind
    assert "wrote 1 image(s) to kinds.png" in output

