"""Training one denoiser (a modality's, or the unconditional prior) under accelerate.

The same loop runs on a CPU, one GPU, or many GPUs and nodes through ``accelerate launch`` / ``torchrun``.
It is resumable: every ``checkpoint_every`` steps it writes the full training state atomically; ``resume``
continues from the newest checkpoint that loads, falling back to the one before if the newest is corrupt.
Batches are a pure function of (seed, step, rank), so a resumed run repeats the same loss curve. With ``vae`` set
the denoiser learns a frozen VAE's latents of the images (mcdm.latent) and its model folder is a latent model; on
a cached synthfaces set those latents are encoded once and read by index (mcdm.latent_cache).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from omegaconf import MISSING
from tqdm.auto import tqdm

from mcdm.atomic import remove_orphans, write_text_atomic
from mcdm.checkpoint import save_model
from mcdm.config_reference import key
from mcdm.errors import CheckpointError, ConfigError, MCDMError
from mcdm.pixels import to_model_range
from mcdm.schedule import Prediction, check_schedule, to_eps
from mcdm.seeds import check_seed
from mcdm.training.checkpoints import CHECKPOINTS, Checkpoint, refuse_existing, resume as resume_newest, save_checkpoint
from mcdm.training.guards import FiniteWatch, check_writable_run_folder
from mcdm.training.log import LOG_FILE, TrainingLog
from mcdm.training.schedule import learning_rate
from mcdm.training.trainer import TrainingResult

FINAL_MODEL = "model"
MODULES = ("denoiser", "ema")  # the tensors files of a checkpoint, besides the optimizer's
CACHE_FROM = 5_000  # datasets at least this long are cached on disk rather than rendered per batch


# data.name -> the mcdm.data.adapters reader of a real dataset under data.root
READERS = {"celebamask-hq": "CelebAMaskHQ", "mm-celeba-hq": "MMCelebAHQ", "folder": "FolderFaces"}


# DDPM's linear schedule: its terminal noise level (sigma_max ~ 150) keeps DPM-Solver and Euler stable, where
# the capped cosine schedule (sigma_max ~ 2e4) amplifies every eps error in their first steps.
SHIPPED_SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02}


@dataclass
class DataConfig:
    name: Literal["synthfaces", "celebamask-hq", "mm-celeba-hq", "folder"] = key(
        "synthfaces", "the dataset: the built-in synthetic faces or a real dataset's reader (docs/data.md)")
    size: int = key(32, "image size in pixels, 8 to 1024; models compose only at one size")
    length: int = key(50_000, "synthfaces: training samples (the test split is disjoint; cached on disk from 5,000)")
    seed: int = key(0, "synthfaces: which faces are drawn")
    variant: str = key("default", "synthfaces: the distribution the faces are drawn from (mcdm.data.variants)")
    root: str | None = key(None, "a real dataset's folder (every sample it reads; MM-CelebA-HQ: its train split)")


@dataclass
class TrainConfig:
    out: str = key(MISSING, "run folder: checkpoints/, log.csv, samples/ and, at the end, model/ (required)")
    modality: str | None = key(None, "the registered modality to train; null trains the unconditional prior")
    data: DataConfig = key(doc="the training data (the data.* keys)", factory=DataConfig)
    denoiser: dict[str, Any] = key(doc="overrides of the modality's denoiser_config, passed to build() "
                                        "(e.g. denoiser.block_out_channels=[8,16])", factory=dict)
    init_from: str | None = key(None, "warm start: a model folder whose weights (safetensors) the new denoiser "
                                       "starts from, matched by tensor name and shape; see docs/training.md")
    vae: str | None = key(None, "a diffusers AutoencoderKL folder (safetensors): the denoiser learns its latents of "
                                "the images and model/ is a latent model; null: pixels; see docs/training.md")
    latent_cache: bool = key(True, "with vae, on a synthfaces set cached on disk (data.length from 5,000): encode "
                                   "its images once, into the dataset's cache folder, for every run on that VAE and "
                                   "data; false: encode each batch (the same latents up to float rounding)")
    schedule: dict[str, Any] = key(doc="the diffusers noise schedule; the default is the one every shipped model "
                                        "shares (linear betas 1e-4 to 0.02, 1000 steps), which composing needs",
                                    factory=lambda: dict(SHIPPED_SCHEDULE))
    # v = sqrt(abar) eps - sqrt(1 - abar) x0: at high noise the network predicts the image, not the noise, so
    # its errors are not multiplied by sqrt(1 - abar) / sqrt(abar) (~150) on the way to x0, which made the
    # deterministic samplers (DDIM without clipping, DPM-Solver, Euler) diverge on briefly trained eps models.
    prediction: Prediction = key(Prediction.V, "what the network predicts: v_prediction (the shipped models'), "
                                                "epsilon or sample; the engine converts to eps when composing")
    steps: int = key(10_000, "optimiser steps (the shipped recipe: 5000 at batch 32)")
    batch_size: int = key(32, "images per step and process")
    grad_accum: int = key(1, "micro-batches accumulated per optimiser step (effective batch: batch_size x this)")
    lr: float = key(3e-4, "AdamW learning rate after warm-up")
    lr_schedule: Literal["constant", "cosine"] = key("cosine", "after warm-up: constant, or cosine decay to 0")
    warmup_steps: int = key(200, "linear learning-rate warm-up steps")
    weight_decay: float = key(0.0, "AdamW weight decay")
    ema_decay: float = key(0.999, "EMA decay of the saved model; it warms up as min(ema_decay, (1 + step) / "
                                   "(10 + step)), so early averages are not the random initial weights")
    condition_dropout: float = key(0.1, "probability of training on the null condition (what baseline: own and "
                                         "condition dropout need)")
    mixed_precision: Literal["fp32", "bf16", "fp16"] = key("fp32", "autocast precision; bf16 pays off on a GPU, "
                                                                   "fp32 is usually faster on a CPU")
    checkpoint_every: int = key(500, "steps between resumable checkpoints (and at the last step)")
    keep_checkpoints: int = key(3, "checkpoints kept; older ones are removed")
    sample_every: int = key(1000, "steps between sample grids under samples/; 0: none")
    log_every: int = key(25, "steps between rows of log.csv (step, loss, lr, seconds)")
    seed: int = key(0, "initial weights and every batch (a pure function of seed and step: resuming repeats them)")
    threads: int = key(0, "torch CPU threads; 0 keeps torch's default (all cores); the shipped runs used 1 or 2, "
                           "several runs sharing one machine")


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Train and return the folder of the final (EMA) model, loadable with ``mcdm.checkpoint.load_model``."""
    from accelerate import Accelerator
    from diffusers import DDPMScheduler

    from mcdm.plugins import make_plugin_manager

    _validate(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    latent = open_vae(config)
    out = Path(config.out).expanduser()
    check_writable_run_folder(out)
    accelerator = Accelerator(
        mixed_precision="no" if config.mixed_precision == "fp32" else config.mixed_precision,
        gradient_accumulation_steps=config.grad_accum,
        cpu=not torch.cuda.is_available(),
    )
    if accelerator.is_main_process:  # what writers killed mid-write left behind (torn checkpoints, models)
        for parent in (out, out / CHECKPOINTS):
            remove_orphans(parent)
    plugins = make_plugin_manager()
    modality = plugins.modality(config.modality) if config.modality else None
    data = open_run_data(config.data, accelerator)
    if modality is not None:
        check_trainable(modality, data, config.data)
    noise_schedule = DDPMScheduler.from_config(config.schedule)

    torch.manual_seed(config.seed)  # identical initial weights on every rank
    try:
        denoiser = _build_denoiser(plugins, modality, config, latent)
    except (TypeError, ValueError, RuntimeError) as exc:  # the architecture's own check of its arguments
        raise ConfigError(f"denoiser={dict(config.denoiser)} does not build a {config.modality or 'prior'} "
                          f"denoiser: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
                          ) from exc
    if latent is not None:
        latent.vae.to(accelerator.device)
    with accelerator.local_main_process_first():  # one process a machine encodes, the others then read its latents
        latents = open_latents(data, latent, config, progress=progress and accelerator.is_main_process)
    _check_runs(denoiser, data, modality, config, latent, latents)
    if config.init_from and not resume:  # a resumed run's checkpoint holds the weights
        from mcdm.warm_start import warm_start

        report = warm_start(denoiser, Path(config.init_from).expanduser(), plugins, schedule=dict(config.schedule),
                            prediction=config.prediction)
        if accelerator.is_main_process and progress:
            print(report)
    ema = copy.deepcopy(denoiser).requires_grad_(False)
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate(
        step, peak=1.0, steps=config.steps, warmup=config.warmup_steps, decay=config.lr_schedule))
    state = _State(denoiser, ema, optimizer, lr_scheduler, space_of(latent))
    if resume:
        resume_newest(out / CHECKPOINTS, MODULES, state.restore, announce=accelerator.is_main_process)
    else:
        refuse_existing(out / CHECKPOINTS)

    model, optimizer = accelerator.prepare(denoiser, optimizer)
    ema.to(accelerator.device)  # prepare moved only the trained copy
    alphas_cumprod = noise_schedule.alphas_cumprod.to(accelerator.device)
    cond_size = condition_size(denoiser, config.data.size)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "config.json", json.dumps(asdict(config), indent=2, default=str))
    log = TrainingLog(out / LOG_FILE, accelerator.is_main_process)
    log.truncate_after(state.step)
    bar = tqdm(total=config.steps, initial=state.step, desc=f"train {config.modality or 'prior'}",
               disable=not (progress and accelerator.is_main_process))
    started = time.perf_counter()
    watch = FiniteWatch(accelerator, check_gradients=config.mixed_precision != "fp16")  # fp16's scaler skips inf
    while state.step < config.steps:
        for micro in range(config.grad_accum):
            batch = make_batch(data, modality, config, state.step, micro, accelerator.process_index,
                               accelerator.num_processes, condition_size=cond_size)
            x0 = to_training_space(batch, latent, latents, accelerator.device)
            cond = None if batch.cond is None else batch.cond.to(accelerator.device)
            g = torch.Generator().manual_seed(_batch_seed(config.seed, state.step, micro, accelerator.process_index) + 1)
            noise = torch.randn(x0.shape, generator=g).to(accelerator.device)
            t = torch.randint(0, noise_schedule.config.num_train_timesteps, (x0.shape[0],), generator=g).to(accelerator.device)
            abar = alphas_cumprod[t].view(-1, 1, 1, 1)
            x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
            with accelerator.accumulate(model), accelerator.autocast():
                target = noise if config.prediction is Prediction.EPSILON else abar.sqrt() * noise - (1 - abar).sqrt() * x0
                loss = torch.nn.functional.mse_loss(model(x_t, t, cond).float(), target)
                accelerator.backward(loss)
                watch.observe(state.step + 1, loss, model)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        lr_scheduler.step()
        _ema_update(ema, accelerator.unwrap_model(model), config.ema_decay, state.step)
        state.step += 1
        bar.update(1)
        if state.step % config.log_every == 0 or state.step == config.steps:
            # .item() syncs, so it is read only on logging steps
            watch.check(out / CHECKPOINTS, lr_scheduler.get_last_lr()[0])
            loss_value = accelerator.reduce(loss.detach(), reduction="mean").item()
            log.write(state.step, loss_value, lr_scheduler.get_last_lr()[0], time.perf_counter() - started)
            bar.set_postfix(loss=f"{loss_value:.4f}")
        if state.step % config.checkpoint_every == 0 or state.step == config.steps:
            watch.check(out / CHECKPOINTS, lr_scheduler.get_last_lr()[0])  # never checkpoint diverged weights
            _checkpoint(state, out / CHECKPOINTS, config.keep_checkpoints, accelerator)
        if accelerator.is_main_process and config.sample_every and state.step % config.sample_every == 0:
            write_sample_grid(ema, modality, config, noise_schedule, out / "samples" / f"step-{state.step:07d}.png",
                              latent)
    bar.close()
    in_sync = _ranks_in_sync(accelerator.unwrap_model(model), accelerator)
    if accelerator.is_main_process:
        (out / "summary.json").write_text(json.dumps({
            "steps": state.step, "world_size": accelerator.num_processes, "ranks_in_sync": in_sync,
            "seconds": time.perf_counter() - started,
        }, indent=2))
        save_model(out / FINAL_MODEL, ema, modality=config.modality, schedule_config=dict(config.schedule),
                   prediction=config.prediction, vae=None if latent is None else latent.folder)
    accelerator.wait_for_everyone()
    return out / FINAL_MODEL


def export_checkpoint(run: str | Path, out: str | Path, step: int | None = None) -> Path:
    """Write the EMA weights of a run's checkpoint (the newest, or ``step``) as a model folder
    (benchmarks/warm_start.py scores a run's curve this way)."""
    from mcdm.config import load_config
    from mcdm.errors import CheckpointError
    from mcdm.plugins import make_plugin_manager
    from mcdm.training.checkpoints import read_checkpoint

    run = Path(run).expanduser()
    config = load_config(TrainConfig, run / "config.json")
    checkpoints = sorted((run / CHECKPOINTS).glob("step-*"))
    if step is not None:
        checkpoints = [c for c in checkpoints if c.name == f"step-{step:07d}"]
    if not checkpoints:
        raise CheckpointError(f"no checkpoint{'' if step is None else f' at step {step}'} in {str(run)!r}")
    plugins = make_plugin_manager()
    modality = plugins.modality(config.modality) if config.modality else None
    latent = open_vae(config)
    ema = _build_denoiser(plugins, modality, config, latent)
    checkpoint = read_checkpoint(checkpoints[-1], MODULES)
    check_same_space(checkpoint, space_of(latent))
    ema.load_state_dict(checkpoint.modules["ema"])
    return save_model(out, ema, modality=config.modality, schedule_config=dict(config.schedule),
                      prediction=config.prediction, vae=None if latent is None else latent.folder)


def run(config: TrainConfig, resume: bool) -> TrainingResult:
    """``mcdm train denoiser CONFIG``: train, and say where the model was written."""
    model = train(config, resume=resume)
    return TrainingResult(model, f"trained model written to {model}")


def space_of(latent) -> str:
    """Where a run's weights live: "pixels", or "latent:" and the VAE's identity (``mcdm.latent.vae_id``)."""
    return "pixels" if latent is None else f"latent:{latent.id}"


def check_same_space(checkpoint: Checkpoint, space: str) -> None:
    """A checkpoint learned in another space (pixels, or another VAE: e.g. the run's vae folder trained further
    since) must not be resumed or exported with this one. Checkpoints written before the space was recorded pass."""
    saved = checkpoint.extra.get("space")
    if saved is not None and saved != space:
        raise ConfigError(f"checkpoint step {checkpoint.step} was trained in {saved}, and the run's vae now gives "
                          f"{space}: the vae folder changed since; put the one the run was trained on back, or start a "
                          "new run")


def open_vae(config: TrainConfig):
    """The frozen VAE (an ``mcdm.latent.LatentSpace``) whose latents the run trains on, checked against data.size;
    None for a run on pixels."""
    if config.vae is None:
        return None
    from mcdm.latent import load_vae

    folder = Path(config.vae).expanduser()
    if not str(config.vae).strip() or not folder.is_dir():
        raise ConfigError(f"vae={config.vae!r} is not a folder; it names a diffusers AutoencoderKL folder, or null")
    try:
        latent = load_vae(folder)
    except CheckpointError as exc:  # not an AutoencoderKL, no safetensors, a pickle file: what was named is wrong
        raise ConfigError(f"vae={config.vae!r}: {exc}") from exc
    if config.data.size % latent.scale:
        raise ConfigError(f"data.size={config.data.size} is not a multiple of {latent.scale}, the scale of the VAE "
                          f"vae={config.vae!r} (image pixels per latent pixel)")
    return latent


def open_latents(data, latent, config: TrainConfig, *, progress: bool = True) -> np.ndarray | None:
    """The latents of every training image, encoded once (``mcdm.latent_cache``), where the run learns a VAE's
    latents of a synthfaces cache and ``latent_cache`` is on; None where each batch is encoded as it is drawn."""
    from mcdm.data.cache import SynthCache
    from mcdm.latent_cache import load_or_build_latents

    if latent is None or not config.latent_cache or not isinstance(data, SynthCache):
        return None
    return load_or_build_latents(data, latent, progress=progress)


def to_training_space(batch: "Batch", latent, latents: np.ndarray | None, device) -> torch.Tensor:
    """What the denoiser learns to denoise, on ``device``: the batch's images, or the VAE's latents of them, read
    by index from ``latents`` (``open_latents``) where there are some and encoded here otherwise."""
    if latent is None:
        return batch.images.to(device)
    if latents is not None:
        return torch.from_numpy(latents[batch.indices]).to(device)
    return latent.encode(batch.images).to(device)


def condition_size(denoiser, image_size: int) -> int:
    """The resolution ``denoiser`` reads conditions at: its own sample size, or the image's (as the Composer gives
    them: a latent model's denoiser type may read full-size conditions)."""
    return image_size if denoiser.condition_size == "image" else denoiser.sample_size


def open_run_data(config: DataConfig, accelerator):
    """``open_training_data`` for a run: one process a machine renders a missing cache while the others wait and
    then map it; the dataset's own refusal of its arguments (size, variant, ...) is a ConfigError."""
    try:
        with accelerator.local_main_process_first():
            return open_training_data(config)
    except MCDMError:
        raise
    except ValueError as exc:
        raise ConfigError(f"data: {exc}") from exc


def open_training_data(config: DataConfig):
    """The training split as a sequence of ``mcdm.data`` FaceSamples.

    Small runs render on demand; large ones memory-map the dataset cache (built once, shared by every run,
    sample for sample the same faces), so rendering does not slow each step. A real dataset is read from
    ``root`` by its ``mcdm.data.adapters`` reader, its images resized to ``size``.
    """
    from mcdm.data.cache import load_or_build_cache
    from mcdm.data.synthfaces import SynthFaces

    if config.name != "synthfaces":
        return _real_faces(config)
    if config.length < CACHE_FROM:
        return SynthFaces(size=config.size, seed=config.seed, split="train", length=config.length,
                          variant=config.variant)
    return load_or_build_cache(config.size, config.length, config.seed, "train", variant=config.variant)


def _real_faces(config: DataConfig):
    from mcdm.data import adapters
    from mcdm.data.adapters.sized import AtSize

    if config.root is None:
        raise ConfigError(f"data.name={config.name!r} needs data.root, the folder the dataset is in")
    if config.variant != "default":
        raise ConfigError(f"data.variant={config.variant!r} draws synthetic faces; it does not apply to {config.name!r}")
    faces = getattr(adapters, READERS[config.name])(Path(config.root).expanduser())
    if not len(faces):
        raise ConfigError(f"data.root={config.root!r} holds no {config.name} faces")
    return AtSize(faces, config.size)


def check_trainable(modality, data, config: DataConfig) -> None:
    """Fail before training when the data cannot give this modality its input (e.g. masks from MM-CelebA-HQ)."""
    sample = data[0]
    try:
        modality.prepare(modality.condition_from_sample(sample, np.random.default_rng(0)), size=config.size)
    except Exception as exc:  # any failure here means every batch would fail the same way
        raise ConfigError(f"modality {modality.name!r} cannot train on data.name={config.name!r}: its first "
                          f"sample ({sample.name}) gives no usable input ({type(exc).__name__}: {exc})") from exc


class Batch(NamedTuple):
    """One micro-batch: which training samples were drawn, their images in [-1, 1] and their conditions."""

    indices: np.ndarray
    images: torch.Tensor
    cond: torch.Tensor | None


def make_batch(data, modality, config: TrainConfig, step: int, micro: int, rank: int, world: int, *,
               condition_size: int | None = None) -> Batch:
    """The samples drawn for one micro-batch, their images and their conditions prepared at ``condition_size``: a
    pure function of (seed, step, micro, rank). Without a modality (a prior, a VAE) there are no conditions and no
    size to give."""
    rng = np.random.default_rng(_batch_seed(config.seed, step, micro, rank))
    indices = rng.integers(0, len(data), size=config.batch_size)
    samples = [data[int(i)] for i in indices]
    images = to_model_range(np.stack([s.image for s in samples]))
    if modality is None:
        return Batch(indices, images, None)
    if condition_size is None:
        raise TypeError("make_batch needs condition_size to prepare a modality's conditions")
    conds = []
    for sample in samples:
        cond = modality.prepare(modality.condition_from_sample(sample, rng), size=condition_size)
        conds.append(modality.null_condition(cond) if rng.random() < config.condition_dropout else cond)
    return Batch(indices, images, torch.stack(conds))


def write_sample_grid(ema, modality, config: TrainConfig, noise_schedule, path: Path, latent=None,
                      n: int = 8) -> None:
    """Samples of the EMA model on held-out conditions (conditional model) or from noise (prior), decoded by the
    VAE of a latent run.

    The conditions are held-out synthfaces whatever the training data, a fixed reference that needs no split.
    """
    from diffusers import DDIMScheduler

    from mcdm.compose import to_pil
    from mcdm.data.synthfaces import SynthFaces
    from mcdm.imageio import grid, save_png_atomic
    from mcdm.sampling import sample

    held_out = SynthFaces(size=config.data.size, seed=config.data.seed, split="test", length=n,
                          variant=config.data.variant)  # "default" for real data (checked)
    cond = None
    if modality is not None:
        rng = np.random.default_rng(0)
        size = condition_size(ema, config.data.size)
        cond = torch.stack([modality.prepare(modality.condition_from_sample(held_out[i], rng), size=size)
                            for i in range(n)])
    device = next(ema.parameters()).device
    cond = None if cond is None else cond.to(device)
    scheduler = DDIMScheduler.from_config(noise_schedule.config)
    abar = noise_schedule.alphas_cumprod.to(device)

    def predict_eps(x_t, t):
        return to_eps(ema(x_t, t, cond).float(), x_t, abar[int(t)], config.prediction)

    x = sample(predict_eps, scheduler, shape=(n, ema.image_channels, ema.sample_size, ema.sample_size),
               steps=25, generator=torch.Generator().manual_seed(0), device=device, progress=False)
    if latent is not None:
        x = latent.decode(x)
    real = [held_out[i].image for i in range(n)]
    from PIL import Image

    save_png_atomic(grid([Image.fromarray(r) for r in real] + to_pil(x.float().cpu()), columns=n), path)


def _validate(config: TrainConfig) -> None:
    """Every value checked before any work, each refusal one line naming the key."""
    if not str(config.out).strip():
        raise ConfigError("out must name a run folder")
    for name in ("steps", "batch_size", "grad_accum", "checkpoint_every", "keep_checkpoints", "log_every"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    for name in ("warmup_steps", "sample_every", "threads"):
        if getattr(config, name) < 0:
            raise ConfigError(f"{name} must be at least 0, got {getattr(config, name)}")
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise ConfigError(f"lr must be a finite number above 0, got {config.lr}")
    if not (math.isfinite(config.weight_decay) and config.weight_decay >= 0):
        raise ConfigError(f"weight_decay must be a finite number of at least 0, got {config.weight_decay}")
    if not 0 <= config.condition_dropout < 1:
        raise ConfigError(f"condition_dropout must be in [0, 1), got {config.condition_dropout}")
    if not 0 <= config.ema_decay < 1:
        raise ConfigError(f"ema_decay must be in [0, 1), got {config.ema_decay}")
    check_seed(config.seed, "seed")
    check_seed(config.data.seed, "data.seed")
    if not 8 <= config.data.size <= 1024:
        raise ConfigError(f"data.size must be in [8, 1024] pixels, got {config.data.size}")
    if config.data.length < 1:
        raise ConfigError(f"data.length must be at least 1, got {config.data.length}")
    check_schedule(dict(config.schedule), "schedule", ConfigError)


def _check_runs(denoiser, data, modality, config: TrainConfig, latent, latents: np.ndarray | None) -> None:
    """One forward pass on the first training sample, so an architecture that cannot run on these images
    (e.g. a size its down-sampling does not divide, an empty block list) fails before training starts."""
    batch = make_batch(data, modality, replace(config, batch_size=1, condition_dropout=0.0), 0, 0, 0, 1,
                       condition_size=condition_size(denoiser, config.data.size))
    x0 = to_training_space(batch, latent, latents, next(denoiser.parameters()).device)  # the VAE may be on the GPU
    try:
        with torch.no_grad():
            out = denoiser(x0, torch.zeros(1, dtype=torch.long), batch.cond)
    except Exception as exc:  # any failure here would fail every step the same way
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"the {config.modality or 'prior'} denoiser cannot run on data.size={config.data.size} "
                          f"images with denoiser={dict(config.denoiser)}: {first}") from exc
    if out.shape != x0.shape:
        raise ConfigError(f"the denoiser's output has shape {tuple(out.shape)}, expected {tuple(x0.shape)}")


def _build_denoiser(plugins, modality, config: TrainConfig, latent):
    size, channels = config.data.size, 3
    if latent is not None:  # the network denoises latents: smaller by the VAE's scale, in its channels
        size, channels = size // latent.scale, latent.channels
    if modality is None:
        cls = plugins.denoiser_class("unet")
        arch = {"sample_size": size, "image_channels": channels, "cond_channels": 0}
    else:
        cls = plugins.denoiser_class(modality.denoiser_type)
        arch = modality.denoiser_config(sample_size=size, image_channels=channels)
    return cls.build(**{**arch, **config.denoiser})


def _batch_seed(seed: int, step: int, micro: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, micro, rank]).generate_state(1)[0])


@torch.no_grad()
def _ema_update(ema, model, decay: float, step: int) -> None:
    # warm-up: early averages would otherwise be dominated by the random initial weights
    decay = min(decay, (1 + step) / (10 + step))
    ema_params = list(ema.parameters())
    torch._foreach_lerp_(ema_params, [p.detach().to(e.dtype) for p, e in zip(model.parameters(), ema_params)], 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def _checkpoint(state: "_State", folder: Path, keep: int, accelerator) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_checkpoint(folder, state.checkpoint(), keep=keep)
    accelerator.wait_for_everyone()


def _ranks_in_sync(model, accelerator) -> bool:
    """All processes hold the same weights (what data-parallel training must guarantee)."""
    total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    gathered = accelerator.gather(total.to(accelerator.device))
    return bool(torch.allclose(gathered, gathered[0].expand_as(gathered), rtol=0, atol=1e-9))


class _State:
    """The denoiser run's resumable state: weights, EMA, optimizer, LR scheduler and step (mcdm.training), and the
    space the weights were learned in (``space_of``), which a resumed run must share."""

    def __init__(self, denoiser, ema, optimizer, lr_scheduler, space: str):
        self.denoiser, self.ema, self.optimizer, self.lr_scheduler = denoiser, ema, optimizer, lr_scheduler
        self.space = space
        self.step = 0

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(step=self.step, modules={"denoiser": self.denoiser.state_dict(), "ema": self.ema.state_dict()},
                          optimizer=self.optimizer.state_dict(),
                          extra={"lr_scheduler": self.lr_scheduler.state_dict(), "space": self.space})

    def restore(self, checkpoint: Checkpoint) -> None:
        check_same_space(checkpoint, self.space)
        self.denoiser.load_state_dict(checkpoint.modules["denoiser"])
        self.ema.load_state_dict(checkpoint.modules["ema"])
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.lr_scheduler.load_state_dict(checkpoint.extra["lr_scheduler"])
        self.step = checkpoint.step
