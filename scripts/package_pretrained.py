"""Assemble a shipped composition folder from finished training runs.

    python scripts/package_pretrained.py --runs ~/runs --clip ~/runs/clip-final --out pretrained/synthfaces-32

Reads ``<runs>/<model>/model`` (the EMA weights each run saved at its end) for the prior and every modality
run found, copies them with the run's config and summary, copies the small CLIP the text model's frozen
text tower came from (``clip/``, for CLIP scores), writes ``composition.yaml`` and ``SHA256SUMS``.
The model card (``MODEL_CARD.md``) is written separately, from the evaluation's figures.
"""

import argparse
import json
import shutil
from pathlib import Path

import yaml

from mcdm.checkpoint import write_checksums

MODALITIES = ("sketch", "segmentation", "text")


def package(runs: Path, out: Path, defaults: dict, clip: Path | None) -> None:
    if not (runs / "prior" / "model").is_dir():
        raise SystemExit(f"{runs / 'prior' / 'model'} is missing: the prior run has not finished")
    out.mkdir(parents=True, exist_ok=True)
    found = {}
    for name in ("prior", *MODALITIES):
        model = runs / name / "model"
        if not model.is_dir():
            print(f"skipping {name}: {model} is missing")
            continue
        shutil.rmtree(out / name, ignore_errors=True)
        shutil.copytree(model, out / name)
        for extra in ("config.json", "summary.json", "log.csv"):
            if (runs / name / extra).is_file():
                shutil.copy(runs / name / extra, out / name / f"training-{extra}")
        found[name] = name
    if clip is not None:
        shutil.rmtree(out / "clip", ignore_errors=True)
        shutil.copytree(clip, out / "clip")
    composition = {
        "name": out.name,
        "prior": "prior",
        "scheduler": defaults.get("scheduler", "dpm++"),
        "steps": defaults.get("steps", 25),
        "modalities": {m: {"path": m, **defaults.get("modalities", {}).get(m, {})} for m in MODALITIES if m in found},
    }
    (out / "composition.yaml").write_text(yaml.safe_dump(composition, sort_keys=False))
    write_checksums(out)
    print(f"wrote {out}: {', '.join(found)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clip", type=Path, help="the small CLIP folder (clip_config.json + model.safetensors)")
    parser.add_argument("--defaults", type=Path, help="JSON with composition defaults (scheduler, steps, weights)")
    args = parser.parse_args()
    defaults = json.loads(args.defaults.read_text()) if args.defaults else {}
    package(args.runs.expanduser(), args.out, defaults, args.clip.expanduser() if args.clip else None)


if __name__ == "__main__":
    main()
