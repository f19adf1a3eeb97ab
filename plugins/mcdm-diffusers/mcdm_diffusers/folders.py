"""Model folders for SD-family pipelines: an mcdm.json beside links to a diffusers pipeline's files.

``mcdm-diffusers-import OUT --pipeline SD_FOLDER [--controlnet CONTROLNET_FOLDER] [--modality NAME]`` writes OUT
with real folders whose files are links to the pipeline's (and the ControlNet's) configs, tokenizer files and
safetensors weights, as a Hugging Face cache snapshot links to its blobs: nothing is copied, and no pickle-format
file is ever linked, so diffusers' ``.bin`` fallbacks are out of reach. One pipeline serves as the prior (no
modality), the ``prompt`` model and every ControlNet's base; they share one UNet when loaded together.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from mcdm.errors import CheckpointError, ConfigError
from mcdm.readers import read_json_object, read_text

COMPONENTS = ("unet", "text_encoder", "tokenizer", "vae")
SAFE_SUFFIXES = (".json", ".txt", ".safetensors")  # configs, tokenizer vocabularies and merges, weights


def write_model_folder(out: str | os.PathLike, pipeline: str | os.PathLike, *, modality: str | None = None,
                       controlnet: str | os.PathLike | None = None, control: str = "edges",
                       conditioning_scale: float = 1.0, dtype: str = "fp32", offload: bool = False,
                       checksums: bool = True) -> Path:
    """Write an mcdm model folder for ``pipeline`` (with ``controlnet``: an ``sd_controlnet`` model)."""
    from mcdm.checkpoint import MANIFEST, SCHEDULE, write_checksums

    out, pipeline = Path(out), Path(pipeline)
    if out.exists():
        raise ConfigError(f"{str(out)!r} already exists; choose a new folder")
    schedule = pipeline / "scheduler" / "scheduler_config.json"
    prediction = read_json_object(schedule, CheckpointError).get("prediction_type", "epsilon")
    parts = {name: pipeline / name for name in COMPONENTS}
    if controlnet is not None:
        parts["controlnet"] = Path(controlnet)
    for name, source in parts.items():
        if not source.is_dir():
            raise CheckpointError(f"{str(source)!r} does not exist: a pipeline folder has {', '.join(COMPONENTS)}")
    config: dict = {"dtype": dtype, "offload": offload}
    if controlnet is not None:
        config.update(control=control, conditioning_scale=conditioning_scale)
    manifest = {"format": 1, "denoiser": "sd_controlnet" if controlnet is not None else "sd_unet",
                "denoiser_config": config, "modality": modality, "prediction_type": prediction,
                "space": "latent", "vae": "vae"}
    out.mkdir(parents=True)
    for name, source in parts.items():
        _link_files(source, out / name)
    (out / SCHEDULE).write_text(read_text(schedule, CheckpointError))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if checksums:
        write_checksums(out)
    return out


def _link_files(source: Path, target: Path) -> None:
    """A real folder of links to ``source``'s safe files (a Hugging Face cache's own links are followed first)."""
    target.mkdir()
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix.lower() in SAFE_SUFFIXES:
            (target / path.name).symlink_to(path.resolve())


@click.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--pipeline", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A diffusers SD-family pipeline folder (unet/, text_encoder/, tokenizer/, vae/, scheduler/).")
@click.option("--controlnet", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="A ControlNetModel folder: the model reads a control image through it.")
@click.option("--modality", default=None, help="The modality it serves (prompt, sketch, segmentation) [none: the prior].")
@click.option("--control", type=click.Choice(["edges", "palette"]), default="edges", show_default=True,
              help="How the condition becomes the control image: sketch lines, or a painted label map.")
@click.option("--conditioning-scale", type=float, default=1.0, show_default=True)
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True)
@click.option("--offload", is_flag=True, help="Keep weights in host memory; each network visits the GPU for its call.")
@click.option("--checksums/--no-checksums", default=True, show_default=True,
              help="Write SHA256SUMS (reads every weight once; each load then verifies them).")
def main(out, pipeline, controlnet, modality, control, conditioning_scale, dtype, offload, checksums):
    """Write an mcdm model folder for an SD-family pipeline, optionally with a ControlNet."""
    from mcdm.errors import MCDMError

    try:
        write_model_folder(out, pipeline, modality=modality, controlnet=controlnet, control=control,
                           conditioning_scale=conditioning_scale, dtype=dtype, offload=offload, checksums=checksums)
    except MCDMError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {out}")
