"""``mcdm train vae``: a small diffusers ``AutoencoderKL`` whose latents the latent models are trained in.

    mcdm train vae configs/vae/vae-64.yaml out=runs/vae [KEY=VALUE]... [--resume]

The loss is the L1 distance between the faces (in [-1, 1]) and the decoded posterior samples, plus ``kl_weight``
times the posterior's KL divergence from N(0, I) (summed over the latent, averaged over the batch). At the end
``scaling_factor`` is set to 1 / std of the posterior means of the first ``scale_images`` training faces, so
scaled latents have unit variance, and ``out/model`` is written: the diffusers folder (config.json + safetensors,
which ``mcdm.latent.load_vae`` loads), a ``MODEL_CARD.md`` with the recipe, the time and the reconstruction
figures of held-out faces (:mod:`mcdm.eval.reconstruction`), and a ``SHA256SUMS``.

The run folder is the training kit's (:mod:`mcdm.training`): ``checkpoints/`` (resumable, atomically written),
``config.json``, ``log.csv`` and ``summary.json``. Batches are a pure function of (seed, step, rank), so a
run resumed with the same ``steps`` repeats the uninterrupted one (a cosine schedule's curve depends on ``steps``:
resumed with more, it decays from where it was towards the new end).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from omegaconf import MISSING
from tqdm.auto import tqdm

from mcdm.atomic import atomic_folder, remove_orphans, write_text_atomic
from mcdm.config_reference import key
from mcdm.errors import ConfigError
from mcdm.pixels import to_model_range
from mcdm.seeds import check_seed
from mcdm.train import DataConfig, make_batch, open_run_data
from mcdm.training.checkpoints import (
    CHECKPOINTS,
    Checkpoint,
    check_same_settings,
    refuse_existing,
    resume as resume_newest,
    save_checkpoint,
)
from mcdm.training.guards import FiniteWatch, check_writable_run_folder
from mcdm.training.log import LOG_FILE, TrainingLog
from mcdm.training.schedule import learning_rate
from mcdm.training.trainer import TrainingResult

FINAL_MODEL = "model"
CARD_FILE = "MODEL_CARD.md"
MODULES = ("vae",)  # the tensors files of a checkpoint, besides the optimizer's
# settings a resumed run must share with the run it continues (others, like the step count, may change)
_RESUME_KEYS = ("data", "block_out_channels", "layers_per_block", "norm_num_groups", "latent_channels",
                "mid_block_attention", "kl_weight", "batch_size", "lr", "lr_schedule", "warmup_steps",
                "weight_decay", "seed")


@dataclass
class VaeDataConfig(DataConfig):
    size: int = key(64, "image size in pixels, 8 to 1024; the latents are size / 2**(len(block_out_channels) - 1)")


@dataclass
class VaeTrainConfig:
    """A VAE training run (``configs/vae/vae-64.yaml`` is the shipped recipe)."""

    out: str = key(MISSING, "run folder: checkpoints/, config.json, log.csv, summary.json and, at the end, model/ "
                            "(required)")
    data: VaeDataConfig = key(doc="the training faces (the data.* keys, as for mcdm train denoiser)",
                              factory=VaeDataConfig)
    block_out_channels: list[int] = key(doc="the encoder's widths, one down block each (and the decoder's, "
                                            "reversed); n widths shrink each side by 2**(n - 1)",
                                        factory=lambda: [32, 64])
    layers_per_block: int = key(1, "ResNet layers per encoder block (the decoder has one more)")
    norm_num_groups: int = key(32, "GroupNorm groups; must divide every width")
    latent_channels: int = key(4, "channels of the latent")
    mid_block_attention: bool = key(False, "self-attention in the middle blocks (at latent resolution; slow on a "
                                           "CPU at 32x32 latents)")
    kl_weight: float = key(1e-6, "weight of the posterior's KL divergence from N(0, I) beside the L1 reconstruction "
                                 "loss")
    steps: int = key(4_000, "optimiser steps in all (a resumed run counts the steps already done)")
    batch_size: int = key(16, "images per step and process")
    lr: float = key(1e-3, "AdamW learning rate after warm-up")
    lr_schedule: Literal["constant", "cosine"] = key("cosine", "after warm-up: constant, or cosine decay to 0")
    warmup_steps: int = key(100, "linear learning-rate warm-up steps")
    weight_decay: float = key(0.0, "AdamW weight decay")
    mixed_precision: Literal["fp32", "bf16"] = key("fp32", "autocast precision; bf16 also pays off on a CPU "
                                                            "(scripts/vae_step_time.py measures both)")
    checkpoint_every: int = key(500, "steps between resumable checkpoints (and at the last step)")
    keep_checkpoints: int = key(3, "checkpoints kept; older ones are removed")
    log_every: int = key(25, "steps between rows of log.csv (step, loss, lr, seconds)")
    seed: int = key(0, "initial weights, every batch and its posterior samples (a pure function of seed and step: "
                       "resuming repeats them)")
    threads: int = key(0, "torch CPU threads; 0 keeps torch's default (all cores)")
    scale_images: int = key(256, "training faces whose posterior means set scaling_factor (1 / their std)")
    judges: str | None = key("judges-32", "the judges (name or folder) that score the model card's reconstructions; "
                                          "null: PSNR and L1 only")
    card_faces: int = key(256, "held-out test faces the model card's reconstruction figures are measured on")


class _Reconstruction(torch.nn.Module):
    """The VAE's training pass as one ``forward``, so a data-parallel wrapper sees all of it: images and the
    generator of the posterior's noise in, the reconstruction and the KL per image out."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.vae.encode(x).latent_dist
        return self.vae.decode(posterior.sample(generator)).sample, posterior.kl()


def build_vae(config: VaeTrainConfig):
    """The untrained AutoencoderKL that ``config`` describes (seed torch first for reproducible weights)."""
    from diffusers import AutoencoderKL

    widths = list(config.block_out_channels)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=config.latent_channels,
                         down_block_types=("DownEncoderBlock2D",) * len(widths),
                         up_block_types=("UpDecoderBlock2D",) * len(widths), block_out_channels=tuple(widths),
                         layers_per_block=config.layers_per_block, norm_num_groups=config.norm_num_groups,
                         sample_size=config.data.size, mid_block_add_attention=config.mid_block_attention)


def train_vae(config: VaeTrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Train for ``config.steps`` steps in all and return ``out/model``, loadable with ``mcdm.latent.load_vae``."""
    from accelerate import Accelerator

    _validate(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out).expanduser()
    check_writable_run_folder(out)
    judges = _load_judges(config)
    accelerator = Accelerator(mixed_precision="no" if config.mixed_precision == "fp32" else config.mixed_precision,
                              cpu=not torch.cuda.is_available())
    if accelerator.is_main_process:  # what writers killed mid-write left behind (torn checkpoints, models)
        for parent in (out, out / CHECKPOINTS):
            remove_orphans(parent)
    data = open_run_data(config.data, accelerator)
    torch.manual_seed(config.seed)  # identical initial weights on every rank
    vae = _build_checked(config, data)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate(
        step, peak=1.0, steps=config.steps, warmup=config.warmup_steps, decay=config.lr_schedule))
    settings = {name: _plain(getattr(config, name)) for name in _RESUME_KEYS}
    step, seconds_before = 0, 0.0
    if resume:
        def restore(checkpoint: Checkpoint) -> None:
            check_same_settings(checkpoint.extra.get("settings", {}), settings, out)
            vae.load_state_dict(checkpoint.modules["vae"])
            optimizer.load_state_dict(checkpoint.optimizer)
            lr_scheduler.load_state_dict(checkpoint.extra["lr_scheduler"])

        restored = resume_newest(out / CHECKPOINTS, MODULES, restore, announce=accelerator.is_main_process)
        step, seconds_before = restored.step, float(restored.extra.get("seconds", 0.0))
    else:
        refuse_existing(out / CHECKPOINTS)
    if step > config.steps:
        raise ConfigError(f"the newest checkpoint in {str(out / CHECKPOINTS)!r} is at step {step}, past "
                          f"steps={config.steps}")

    model, optimizer = accelerator.prepare(_Reconstruction(vae), optimizer)
    if accelerator.is_main_process:
        write_text_atomic(out / "config.json", json.dumps(asdict(config), indent=2) + "\n")
    log = TrainingLog(out / LOG_FILE, accelerator.is_main_process)
    log.truncate_after(step)
    bar = tqdm(total=config.steps, initial=step, desc="train vae",
               disable=not (progress and accelerator.is_main_process))
    started = time.perf_counter()
    watch = FiniteWatch(accelerator, check_gradients=True)
    while step < config.steps:
        x = make_batch(data, None, config, step, 0, accelerator.process_index, accelerator.num_processes).images
        x = x.to(accelerator.device)
        noise = torch.Generator().manual_seed(_noise_seed(config.seed, step, accelerator.process_index))
        with accelerator.autocast():
            reconstruction, kl = model(x, noise)
            loss = torch.nn.functional.l1_loss(reconstruction.float(), x) + config.kl_weight * kl.float().mean()
        accelerator.backward(loss)
        watch.observe(step + 1, loss, model)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        lr_scheduler.step()
        step += 1
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:  # .item() syncs: only on logging steps
            watch.check(out / CHECKPOINTS, lr_scheduler.get_last_lr()[0])
            value = accelerator.reduce(loss.detach(), reduction="mean").item()
            log.write(step, value, lr_scheduler.get_last_lr()[0], time.perf_counter() - started)
            bar.set_postfix(loss=f"{value:.4f}")
        if step % config.checkpoint_every == 0 or step == config.steps:
            watch.check(out / CHECKPOINTS, lr_scheduler.get_last_lr()[0])  # never checkpoint diverged weights
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                save_checkpoint(out / CHECKPOINTS, Checkpoint(
                    step=step, modules={"vae": vae.state_dict()}, optimizer=optimizer.state_dict(),
                    extra={"lr_scheduler": lr_scheduler.state_dict(), "settings": settings,
                           "seconds": seconds_before + time.perf_counter() - started}),
                    keep=config.keep_checkpoints)
            accelerator.wait_for_everyone()
    bar.close()
    seconds = seconds_before + time.perf_counter() - started  # the training time of every run that led here
    if accelerator.is_main_process:
        _export(vae.eval(), data, config, judges, out, step, seconds, accelerator.device)
    accelerator.wait_for_everyone()
    return out / FINAL_MODEL


def run(config: VaeTrainConfig, resume: bool) -> TrainingResult:
    """``mcdm train vae CONFIG``: train, and say where the VAE was written and how it reconstructs."""
    model = train_vae(config, resume=resume)
    summary = json.loads((Path(config.out).expanduser() / "summary.json").read_text())
    figures = summary["reconstruction"]
    return TrainingResult(model, f"scaling_factor {summary['scaling_factor']:.5f}; held-out PSNR "
                                 f"{figures['psnr']:.2f} dB, L1 {figures['l1']:.4f}\nVAE written to {model}")


@torch.no_grad()
def latent_std(vae, data, n: int, batch_size: int = 64) -> float:
    """The std of the posterior means of the first ``n`` faces of ``data`` (over every latent element)."""
    device = next(vae.parameters()).device
    means = []
    for start in range(0, min(n, len(data)), batch_size):
        images = np.stack([data[i].image for i in range(start, min(start + batch_size, n, len(data)))])
        means.append(vae.encode(to_model_range(images).to(device)).latent_dist.mode().float().cpu())
    return float(torch.cat(means).std())


def _export(vae, data, config: VaeTrainConfig, judges, out: Path, step: int, seconds: float, device) -> None:
    """Set the scaling factor, measure the reconstructions, write ``model/`` (with its card) and summary.json."""
    from mcdm.checkpoint import write_checksums
    from mcdm.eval.reconstruction import reconstruction_figures

    vae.register_to_config(scaling_factor=1.0 / latent_std(vae, data, config.scale_images))
    figures = None
    if judges is not None:
        figures = reconstruction_figures(vae, judges, n=config.card_faces, size=config.data.size)
    summary = {"steps": step, "seconds": round(seconds, 1), "scaling_factor": vae.config.scaling_factor,
               "scaling_faces": min(config.scale_images, len(data)), "reconstruction": figures,
               "machine": {"cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                           "device": str(device), "processor": platform.processor() or platform.machine(),
                           "torch": torch.__version__}}
    with atomic_folder(out / FINAL_MODEL) as tmp:
        vae.save_pretrained(tmp, safe_serialization=True)
        (tmp / CARD_FILE).write_text(model_card(config, summary), encoding="utf-8")
        write_checksums(tmp)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")


def model_card(config: VaeTrainConfig, summary: dict[str, Any]) -> str:
    """The MODEL_CARD.md of a trained VAE folder: what it is, how it was trained, how well it reconstructs."""
    from mcdm.eval.reconstruction import figures_markdown

    size, factor = config.data.size, 2 ** (len(config.block_out_channels) - 1)
    machine, figures = summary["machine"], summary["reconstruction"]
    measured = figures_markdown(figures) if figures else "Not measured (the run was given no judges).\n"
    return f"""# A {size}x{size} AutoencoderKL for synthfaces

A diffusers `AutoencoderKL`: {size}x{size}x3 images in [-1, 1] <-> {size // factor}x{size // factor}x\
{config.latent_channels} latents, widths {list(config.block_out_channels)}, {config.layers_per_block} ResNet \
layer(s) per encoder block, middle attention {'on' if config.mid_block_attention else 'off'}. \
`mcdm.latent.load_vae(folder)` loads it (safetensors only); latents are scaled by `scaling_factor` \
{summary['scaling_factor']:.5f} (1 / std of the posterior means of {summary['scaling_faces']} training faces).

## Training
- Data: {config.data.name}, {size}x{size}, seed {config.data.seed}, train split, {config.data.length:,} faces.
- Loss: L1 of the decoded posterior sample against the image, plus {config.kl_weight:g} x the KL divergence
  from N(0, I) (summed over the latent, averaged over the batch).
- Steps: {summary['steps']:,} at batch {config.batch_size}; AdamW, lr {config.lr:g}, {config.warmup_steps} warm-up
  steps, {config.lr_schedule} schedule; {config.mixed_precision}; seed {config.seed}.
- Time: {summary['seconds']:.0f} s on {machine['device']} ({machine['cpu_cores']} cores, {machine['processor']},
  torch {machine['torch']} with {machine['torch_threads']} thread(s)).
- Reproduce: `mcdm train vae CONFIG out=DIR` with the values of this run's config.json (the shipped recipe is
  `configs/vae/vae-64.yaml`).

## Reconstructions of held-out faces
{measured}"""


def _load_judges(config: VaeTrainConfig):
    """The judges for the card, loaded before any work so that a missing folder fails first."""
    if config.judges is None:
        return None
    from mcdm.eval.judges import Judges
    from mcdm.pretrained import resolve

    judges = Judges.load(resolve(config.judges))
    if config.data.size % judges.parsing.image_size:
        raise ConfigError(f"data.size={config.data.size} faces do not average down to the judges' "
                          f"{judges.parsing.image_size}x{judges.parsing.image_size}; set judges=null or another size")
    return judges


def _build_checked(config: VaeTrainConfig, data):
    """The VAE, after one pass on one training face: an architecture that cannot run on these images fails here."""
    try:
        vae = build_vae(config)
    except (TypeError, ValueError, RuntimeError) as exc:  # the architecture's own check of its arguments
        raise ConfigError(f"block_out_channels={list(config.block_out_channels)} does not build a VAE: "
                          f"{_first_line(exc)}") from exc
    x = make_batch(data, None, replace(config, batch_size=1), 0, 0, 0, 1).images
    try:
        with torch.no_grad():
            reconstruction = vae(x).sample
    except Exception as exc:  # any failure here would fail every step the same way
        raise ConfigError(f"the VAE cannot run on data.size={config.data.size} images: {_first_line(exc)}") from exc
    if reconstruction.shape != x.shape:
        raise ConfigError(f"the VAE gives back {tuple(reconstruction.shape[-2:])} images from data.size="
                          f"{config.data.size}: the size must be a multiple of "
                          f"{2 ** (len(config.block_out_channels) - 1)}")
    return vae


def _validate(config: VaeTrainConfig) -> None:
    """Every value checked before any work, each refusal one line naming the key."""
    if not str(config.out).strip():
        raise ConfigError("out must name a run folder")
    for name in ("steps", "batch_size", "checkpoint_every", "keep_checkpoints", "log_every", "layers_per_block",
                 "norm_num_groups", "latent_channels", "scale_images", "card_faces"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    for name in ("warmup_steps", "threads"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be at least 0, got {getattr(config, name)}")
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise ConfigError(f"lr must be a finite number above 0, got {config.lr}")
    for name in ("weight_decay", "kl_weight"):
        if not (math.isfinite(getattr(config, name)) and getattr(config, name) >= 0):
            raise ConfigError(f"{name} must be a finite number of at least 0, got {getattr(config, name)}")
    widths = list(config.block_out_channels)
    if not widths or min(widths) < 1:
        raise ConfigError(f"block_out_channels must be a list of positive widths, got {widths}")
    if any(width % config.norm_num_groups for width in widths):
        raise ConfigError(f"norm_num_groups={config.norm_num_groups} must divide every width of "
                          f"block_out_channels={widths}")
    check_seed(config.seed, "seed")
    check_seed(config.data.seed, "data.seed")
    if not 8 <= config.data.size <= 1024:
        raise ConfigError(f"data.size must be in [8, 1024] pixels, got {config.data.size}")
    if config.data.length < 1:
        raise ConfigError(f"data.length must be at least 1, got {config.data.length}")


def _noise_seed(seed: int, step: int, rank: int) -> int:
    """The seed of the posterior's noise at one step and rank (its own stream, apart from the batch's)."""
    return int(np.random.SeedSequence([seed, step, rank], spawn_key=(1,)).generate_state(1)[0])


def _plain(value):
    """A setting as a checkpoint's JSON holds it (dataclasses as dicts), so saved and asked-for compare equal."""
    return json.loads(json.dumps(asdict(value) if is_dataclass(value) else value))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
