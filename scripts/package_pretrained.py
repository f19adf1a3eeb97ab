"""Assemble a shipped composition folder from finished training runs.

    python scripts/package_pretrained.py --runs ~/runs --clip ~/runs/clip-final --out pretrained/synthfaces-32

Reads ``<runs>/<model>/model`` (the EMA weights each run saved at its end) for the prior and every modality
run found, copies them with the run's config and summary (a latent model's folder holds its VAE; ``--vae-run``
copies that VAE run's config, summary and log into ``vae-training/`` for the model card), copies the
small CLIP the text model's frozen text tower came from (``clip/``, for CLIP scores), writes ``composition.yaml``
and ``SHA256SUMS``.

The text tower (mostly its 49,408-token embedding) is stored twice, in the text model and in the CLIP;
both copies are written in float16 to keep the folder near 55 MB; ``--half-unets`` stores every UNet in float16
too, for a folder that would pass about 60 MB. Loading casts them back to the modules' float32, so nothing else
changes; ``--check-half`` measures how far each model's predictions move (``float16-check.json``).
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
UNET_WEIGHTS = "unet/diffusion_pytorch_model.safetensors"


def store_half(path: Path) -> None:
    """Rewrite a safetensors file with its float32 tensors in float16."""
    from safetensors.torch import load_file, save_file
    import torch

    tensors = {k: v.half() if v.dtype == torch.float32 else v for k, v in load_file(path).items()}
    save_file(tensors, path)


VAE_RECORDS = "vae-training"  # the VAE run's records, for the model card (its weights are in every model folder)


def package(runs: Path, out: Path, defaults: dict, clip: Path | None, half_unets: bool = False,
            vae_run: Path | None = None) -> None:
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
    if vae_run is not None:
        shutil.rmtree(out / VAE_RECORDS, ignore_errors=True)
        (out / VAE_RECORDS).mkdir()
        for record in ("config.json", "summary.json", "log.csv"):
            shutil.copy(vae_run / record, out / VAE_RECORDS / record)
    composition = {
        "name": out.name,
        "prior": "prior",
        "scheduler": defaults.get("scheduler", "dpm++"),
        "steps": defaults.get("steps", 25),
        "modalities": {m: {"path": m, **defaults.get("modalities", {}).get(m, {})} for m in MODALITIES if m in found},
    }
    (out / "composition.yaml").write_text(yaml.safe_dump(composition, sort_keys=False))
    half = [*HALF_STORED, *(f"{name}/{UNET_WEIGHTS}" for name in found if half_unets)]
    for relative in half:
        if (out / relative).is_file():
            store_half(out / relative)
    write_checksums(out)
    print(f"wrote {out}: {', '.join(found)}")


def half_storage_error(full: Path, half: Path, faces: int = 8) -> float:
    """Largest |eps| difference between a model as trained and as stored, over noisy inputs of its own shape
    (pixels or latents) at t=500, conditioned on held-out faces' inputs (none for the prior)."""
    import torch

    from mcdm.checkpoint import load_model
    from mcdm.compose import prepare_condition
    from mcdm.data.synthfaces import SynthFaces
    from mcdm.eval.inputs import full_inputs
    from mcdm.latent import load_vae
    from mcdm.plugins import make_plugin_manager

    plugins = make_plugin_manager()
    trained, stored = (load_model(folder, plugins) for folder in (full, half))
    denoiser = trained.denoiser
    scale = 1 if trained.vae_folder is None else load_vae(trained.vae_folder).scale
    shape = (faces, denoiser.image_channels, denoiser.sample_size, denoiser.sample_size)
    x_t = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    t = torch.full((faces,), 500)
    cond = None
    if trained.modality is not None:
        modality = plugins.modality(trained.modality)
        image_size = denoiser.sample_size * scale
        size = image_size if denoiser.condition_size == "image" else denoiser.sample_size
        held_out = SynthFaces(image_size, split="test", length=faces)
        cond = torch.stack([prepare_condition(modality, trained.modality,
                                              full_inputs(held_out[i], None).part(modality.face_part), size)
                            for i in range(faces)])
    with torch.no_grad():
        a, b = (model.denoiser(x_t, t, cond) for model in (trained, stored))
    return float((a - b).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clip", type=Path, help="the small CLIP folder (clip_config.json + model.safetensors)")
    parser.add_argument("--defaults", type=Path, help="JSON with composition defaults (scheduler, steps, weights)")
    parser.add_argument("--vae-run", type=Path, help="a latent set's VAE run folder: its records go to vae-training/")
    parser.add_argument("--half-unets", action="store_true", help="store every UNet in float16 (a folder over ~60 MB)")
    parser.add_argument("--check-half", action="store_true", help="measure what float16 storage changes")
    args = parser.parse_args()
    defaults = json.loads(args.defaults.read_text()) if args.defaults else {}
    runs = args.runs.expanduser()
    package(runs, args.out, defaults, args.clip.expanduser() if args.clip else None, args.half_unets,
            args.vae_run.expanduser() if args.vae_run else None)
    checked = [name for name in ("prior", *MODALITIES) if args.half_unets or name == "text"]
    checked = [name for name in checked if (args.out / name).is_dir()]
    if args.check_half and checked:
        errors = {name: half_storage_error(runs / name / "model", args.out / name) for name in checked}
        stored = "every UNet and the text tower" if args.half_unets else "the text tower"
        (args.out / "float16-check.json").write_text(json.dumps({
            "max_abs_eps_difference": max(errors.values()),
            "models": errors,
            "what": f"each model as trained vs with {stored} stored in float16; 8 held-out faces' inputs, t=500",
        }, indent=2) + "\n")
        write_checksums(args.out)
        for name, error in errors.items():
            print(f"{name}: float16-stored vs as trained, max |eps difference| = {error:.2e}")


if __name__ == "__main__":
    main()
