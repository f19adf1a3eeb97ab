"""Assemble a shipped composition folder from finished training runs.

    python scripts/package_pretrained.py --runs ~/runs --clip ~/runs/clip-final --out pretrained/synthfaces-32

Reads ``<runs>/<model>/model`` (the EMA weights each run saved at its end) for the prior and every modality
run found, copies them with the run's config and summary, copies the small CLIP the text model's frozen
text tower came from (``clip/``, for CLIP scores), writes ``composition.yaml`` and ``SHA256SUMS``.

The text tower (mostly its 49,408-token embedding) is stored twice, in the text model and in the CLIP;
both copies are written in float16 to keep the folder near 55 MB. Loading casts them back to the
modules' float32, so nothing else changes; ``--check-half`` reports how far the text model moves.
The model card (``MODEL_CARD.md``) is written separately, from the evaluation's figures.
"""

import argparse
import json
import shutil
from pathlib import Path

import yaml

from mcdm.checkpoint import write_checksums

MODALITIES = ("sketch", "segmentation", "text")


HALF_STORED = ("text/text_encoder/model.safetensors", "clip/model.safetensors")


def store_half(path: Path) -> None:
    """Rewrite a safetensors file with its float32 tensors in float16."""
    from safetensors.torch import load_file, save_file
    import torch

    tensors = {k: v.half() if v.dtype == torch.float32 else v for k, v in load_file(path).items()}
    save_file(tensors, path)


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
    for relative in HALF_STORED:
        if (out / relative).is_file():
            store_half(out / relative)
    write_checksums(out)
    print(f"wrote {out}: {', '.join(found)}")


def half_storage_error(full: Path, half: Path, captions: int = 8) -> float:
    """Largest |eps| difference between the text model as trained and as stored in float16, over noisy inputs."""
    import torch

    from mcdm.checkpoint import load_model
    from mcdm.data.synthfaces import SynthFaces
    from mcdm.plugins import make_plugin_manager

    plugins = make_plugin_manager()
    text = plugins.modality("text")
    tokens = torch.stack([text.prepare(face.captions[0], size=32) for face in SynthFaces(32, split="test", length=captions)])
    x_t = torch.randn(captions, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    t = torch.full((captions,), 500)
    with torch.no_grad():
        a, b = (load_model(folder, plugins).denoiser.eval()(x_t, t, tokens) for folder in (full, half))
    return float((a - b).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clip", type=Path, help="the small CLIP folder (clip_config.json + model.safetensors)")
    parser.add_argument("--defaults", type=Path, help="JSON with composition defaults (scheduler, steps, weights)")
    parser.add_argument("--check-half", action="store_true", help="measure what float16 storage changes")
    args = parser.parse_args()
    defaults = json.loads(args.defaults.read_text()) if args.defaults else {}
    package(args.runs.expanduser(), args.out, defaults, args.clip.expanduser() if args.clip else None)
    if args.check_half and (args.out / "text").is_dir():
        error = half_storage_error(args.runs.expanduser() / "text" / "model", args.out / "text")
        (args.out / "float16-check.json").write_text(json.dumps({
            "max_abs_eps_difference": error,
            "what": "text model as trained vs with its text tower stored in float16; 8 held-out captions, t=500",
        }, indent=2) + "\n")
        write_checksums(args.out)
        print(f"text model, float16-stored text tower vs as trained: max |eps difference| = {error:.2e}")


if __name__ == "__main__":
    main()
