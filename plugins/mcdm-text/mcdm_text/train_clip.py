"""``mcdm train clip``: contrastive training of the small CLIP on SynthFaces image/caption pairs, and a retrieval check.

    mcdm train clip configs/clip/clip-32.yaml out=runs/clip [KEY=VALUE]... [--resume]

``hard_negatives`` adds, to open_clip's ``ClipLoss``, that weight times a second cross-entropy: each image must
prefer its caption to ``contrasts`` *contrast captions* of the same face, each wrong about a different attribute
(``mcdm.data.captions.contrast_captions``; the hard negatives of NegCLIP, Yuksekgonul et al. 2023). Without it
the in-batch negatives almost always differ in hair colour, so the text tower never has to encode negation
("does not wear eyeglasses", "is not smiling") and a frozen tower hands the text model captions that have lost it.
With one contrast per image a stated smile is contradicted in about one image in ten; with eight, in most.
(On the synthetic faces neither made the small CLIP encode smiles: the smile is a one-pixel lift of the mouth
corners at 32x32, which its vision tower does not pick up within a few thousand steps.)

Files under ``out`` (the training kit's run folder, :mod:`mcdm.training`)::

    checkpoints/  step-NNNNNNN/ every ``checkpoint_every`` steps (the CLIP's weights, the optimizer, the settings
                  a resumed run must share), the newest ``keep_checkpoints`` kept
    config.json   the run's configuration
    log.csv       step, loss, lr, seconds (rows past the checkpoint a resumed run starts from are dropped)
    clip/         the trained CLIP alone (load_clip reads it; the text denoiser's clip_path points here)

Batch ``s`` is a pure function of ``(seed, s)``, so a resumed run sees the batches an uninterrupted run would.
The cosine schedule decays over ``steps``, so only a run resumed with the same ``steps`` repeats an
uninterrupted one exactly (``lr_schedule=constant`` makes any split repeat it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from omegaconf import MISSING
from tqdm.auto import tqdm

from mcdm.config_reference import key
from mcdm.data.captions import MAX_CONTRASTS
from mcdm.errors import ConfigError, TrainingError
from mcdm.training.checkpoints import (
    CHECKPOINTS,
    Checkpoint,
    check_same_settings,
    refuse_existing,
    resume as resume_newest,
    save_checkpoint,
)
from mcdm.training.log import LOG_FILE, TrainingLog
from mcdm.training.schedule import Decay, learning_rate
from mcdm.training.trainer import TrainingResult
from mcdm_text.clip import build_clip, clip_config, images_to_tensor, load_clip, save_clip
from mcdm_text.modality import TextModality
from mcdm_text.tokens import tokenize_batch

EXPORT = "clip"
MODULES = ("model",)  # the tensors files of a checkpoint, besides the optimizer's
LR_FLOOR = 0.1  # the cosine decays to this share of lr
RETRIEVAL_BATCH = 64
# settings a resumed run must share with the run it continues (others, like the step count, may change)
_RESUME_KEYS = ("batch_size", "size", "seed", "data_seed", "train_length", "lr", "lr_schedule", "weight_decay",
                "warmup_steps", "hard_negatives", "contrasts", "clip")


@dataclass
class ClipTrainConfig:
    """A CLIP training run (``configs/clip/clip-32.yaml`` is the shipped CLIP's)."""

    out: str = key(MISSING, "run folder: checkpoints/, config.json, log.csv and, at the end, clip/ (required)")
    steps: int = key(3_000, "optimiser steps in all (a resumed run counts the steps already done)")
    batch_size: int = key(64, "image/caption pairs per step (the in-batch negatives), at least 2")
    size: int = key(32, "image size in pixels")
    seed: int = key(0, "initial weights and every batch (a pure function of seed and step: resuming repeats them)")
    data_seed: int = key(0, "which synthfaces are drawn")
    train_length: int = key(100_000, "train-split faces the batches are drawn from")
    lr: float = key(5e-4, "AdamW learning rate after warm-up")
    lr_schedule: Decay = key("cosine", "after warm-up: constant, or cosine decay to 10% of lr at the last step")
    warmup_steps: int = key(200, "linear learning-rate warm-up steps")
    weight_decay: float = key(0.1, "AdamW weight decay (not on gains, biases, embeddings, the logit scale)")
    hard_negatives: float = key(0.0, "weight of the contrast-caption loss (0: open_clip's ClipLoss alone)")
    contrasts: int = key(1, f"contrast captions per image, each wrong about a different attribute (1 to "
                            f"{MAX_CONTRASTS}); used when hard_negatives > 0")
    clip: dict[str, Any] = key(doc="the open_clip model config (embed_dim, vision_cfg, text_cfg); empty: the small "
                                   "CLIP of mcdm_text.clip with its vision tower sized for size", factory=dict)
    checkpoint_every: int = key(500, "steps between resumable checkpoints (and at the last step)")
    keep_checkpoints: int = key(3, "checkpoints kept; older ones are removed")
    log_every: int = key(10, "steps between rows of log.csv (step, loss, lr, seconds)")
    num_workers: int = key(0, "processes rendering batches")
    device: str = key("cpu", "the torch device to train on")
    precision: Literal["fp32", "bf16"] = key("fp32", "autocast precision")
    eval_batches: int = key(4, f"test batches of {RETRIEVAL_BATCH} for the retrieval check printed at the end; "
                               "0: none")


def run(config: ClipTrainConfig, resume: bool) -> TrainingResult:
    """``mcdm train clip CONFIG``: train, then check caption -> image retrieval on the test split."""
    folder = train_clip(config, resume=resume)
    lines = []
    if config.eval_batches > 0:
        model, _ = load_clip(folder)
        accuracy = retrieval_accuracy(model.to(config.device), size=config.size, batch_size=RETRIEVAL_BATCH,
                                      batches=config.eval_batches, device=config.device)
        lines.append(f"caption->image top-1 among {RETRIEVAL_BATCH} (test split): {accuracy:.3f} "
                     f"(chance {1 / RETRIEVAL_BATCH:.3f})")
    lines.append(f"CLIP written to {folder}")
    return TrainingResult(folder, "\n".join(lines))


def train_clip(config: ClipTrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Train the CLIP for ``config.steps`` steps in total (``resume``: continuing the run's newest checkpoint,
    whose settings must match); returns the exported ``clip/`` folder."""
    _validate(config)
    out = Path(config.out).expanduser()
    device = torch.device(config.device)
    architecture = dict(config.clip) or clip_config(image_size=config.size)
    if int(architecture["vision_cfg"]["image_size"]) != config.size:
        raise ConfigError(f"the CLIP config's image_size {architecture['vision_cfg']['image_size']} is not the "
                          f"training size {config.size}")
    settings = {name: getattr(config, name) for name in _RESUME_KEYS if name != "clip"} | {"clip": architecture}
    torch.manual_seed(config.seed)
    model = build_clip(architecture).to(device)
    optimizer = _make_optimizer(model, config.lr, config.weight_decay)
    start = 0
    if resume:
        def restore(checkpoint: Checkpoint) -> None:
            check_same_settings(checkpoint.extra.get("settings", {}), settings, out)
            model.load_state_dict(checkpoint.modules["model"])
            optimizer.load_state_dict(checkpoint.optimizer)

        start = resume_newest(out / CHECKPOINTS, MODULES, restore, announce=progress).step
    else:
        refuse_existing(out / CHECKPOINTS)
    if start > config.steps:
        raise ConfigError(f"the newest checkpoint in {str(out / CHECKPOINTS)!r} is at step {start}, past "
                          f"steps={config.steps}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    log = TrainingLog(out / LOG_FILE)
    log.truncate_after(start)

    batches = _Batches(config.size, config.data_seed, config.train_length, config.batch_size, config.seed,
                       contrasts=config.contrasts if config.hard_negatives > 0 else 0)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(start, config.steps),
                                         num_workers=config.num_workers, persistent_workers=False)
    loss_fn = _clip_loss()
    model.train()
    t0 = time.perf_counter()
    bar = tqdm(total=config.steps, initial=start, desc="train clip", disable=not progress, dynamic_ncols=True)
    step = start
    for images, tokens, contrast in loader:
        lr_now = learning_rate(step, peak=config.lr, steps=config.steps, warmup=config.warmup_steps,
                               decay=config.lr_schedule, floor=LR_FLOOR)
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            image_features = model.encode_image(images.to(device), normalize=True)
            text_features = model.encode_text(tokens.to(device), normalize=True)
            contrast_features = (model.encode_text(contrast.flatten(0, 1).to(device), normalize=True)
                                 .unflatten(0, contrast.shape[:2]) if config.hard_negatives else None)
        scale = model.logit_scale.exp()
        loss = loss_fn(image_features.float(), text_features.float(), scale)
        if contrast_features is not None:
            loss = loss + config.hard_negatives * contrast_loss(image_features.float(), text_features.float(),
                                                                contrast_features.float(), scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        step += 1
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:  # .item() waits for the device: only here
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingError(f"training stopped: the loss is {value} at step {step}; lower the lr")
            log.write(step, value, lr_now, time.perf_counter() - t0)
            bar.set_postfix(loss=f"{value:.4f}")
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(out / CHECKPOINTS, Checkpoint(step=step, modules={"model": model.state_dict()},
                                                          optimizer=optimizer.state_dict(),
                                                          extra={"settings": settings}),
                            keep=config.keep_checkpoints)
    bar.close()
    model.eval()
    return save_clip(model, architecture, out / EXPORT, training={"step": step, "settings": settings})


def _validate(config: ClipTrainConfig) -> None:
    """Every value checked before any work, each refusal one line naming the key."""
    for name, least in (("steps", 1), ("batch_size", 2), ("checkpoint_every", 1), ("keep_checkpoints", 1),
                        ("log_every", 1), ("warmup_steps", 0), ("num_workers", 0), ("eval_batches", 0)):
        if getattr(config, name) < least:
            raise ConfigError(f"{name} must be at least {least}, got {getattr(config, name)}")
    if config.train_length < config.batch_size:
        raise ConfigError(f"train_length {config.train_length} is smaller than one batch of {config.batch_size}")
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise ConfigError(f"lr must be a finite number above 0, got {config.lr}")
    if not config.hard_negatives >= 0:
        raise ConfigError(f"hard_negatives is a loss weight, at least 0; got {config.hard_negatives}")
    if not 1 <= config.contrasts <= MAX_CONTRASTS:
        raise ConfigError(f"contrasts (contrast captions per image) must be 1 to {MAX_CONTRASTS}; "
                          f"got {config.contrasts}")


def contrast_loss(image_features: torch.Tensor, text_features: torch.Tensor, contrast_features: torch.Tensor,
                  scale: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each image choosing its own caption (B, D) over its contrast captions (B, K, D);
    normalized features."""
    own = (image_features * text_features).sum(-1, keepdim=True)
    logits = scale * torch.cat([own, torch.einsum("bd,bkd->bk", image_features, contrast_features)], dim=1)
    return torch.nn.functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))


@torch.no_grad()
def retrieval_accuracy(
    model,
    *,
    size: int = 32,
    batch_size: int = 64,
    batches: int = 4,
    data_seed: int = 0,
    device: str | torch.device = "cpu",
) -> float:
    """Caption -> image top-1 accuracy on the SynthFaces test split, among ``batch_size`` images at a time.

    Each test face's first caption must pick out its own image among the ``batch_size`` faces of its batch;
    chance is ``1 / batch_size``. Averaged over ``batches`` disjoint batches.
    """
    from mcdm.data.synthfaces import SynthFaces

    test = SynthFaces(size=size, seed=data_seed, split="test", length=batch_size * batches)
    was_training = model.training
    model.eval()
    correct = 0
    for b in range(batches):
        samples = [test[i] for i in range(b * batch_size, (b + 1) * batch_size)]
        images = images_to_tensor([s.image for s in samples]).to(device)
        tokens = tokenize_batch([s.captions[0] for s in samples], _context_length(model)).to(device)
        image_features = model.encode_image(images, normalize=True)
        text_features = model.encode_text(tokens, normalize=True)
        guess = (text_features @ image_features.T).argmax(dim=1)
        correct += int((guess == torch.arange(len(samples), device=guess.device)).sum())
    model.train(was_training)
    return correct / (batch_size * batches)


# --- data ---------------------------------------------------------------------------------------


class _Batches(torch.utils.data.Dataset):
    """Batch ``step`` -> (uint8->float images (B, 3, H, W), caption tokens (B, L), contrast caption tokens
    (B, contrasts, L)), a pure function of the step."""

    def __init__(self, size: int, data_seed: int, length: int, batch_size: int, seed: int, contrasts: int = 0):
        self.size, self.data_seed, self.length, self.batch_size, self.seed = size, data_seed, length, batch_size, seed
        self.contrasts = contrasts
        self._faces = None
        self._modality = TextModality()

    def __len__(self) -> int:
        return sys.maxsize

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._faces is None:
            from mcdm.data.synthfaces import SynthFaces

            self._faces = SynthFaces(size=self.size, seed=self.data_seed, split="train", length=self.length)
        rng = np.random.default_rng([self.seed, int(step)])
        indices = rng.choice(self.length, size=self.batch_size, replace=False)
        samples = [self._faces[int(i)] for i in indices]
        captions = [self._modality.condition_from_sample(s, rng) for s in samples]
        images = images_to_tensor([s.image for s in samples])
        length = self._modality.context_length
        tokens = tokenize_batch(captions, length)
        if not self.contrasts:
            return images, tokens, torch.zeros(len(samples), 0, length, dtype=torch.long)
        from mcdm.data.captions import contrast_captions

        contrast = [c for s, caption in zip(samples, captions)
                    for c in contrast_captions(s.attributes, caption, rng, self.contrasts)]
        return images, tokens, tokenize_batch(contrast, length).unflatten(0, (len(samples), self.contrasts))


def _make_optimizer(model, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; no weight decay on gains, biases, embeddings and the logit scale (as open_clip trains)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        exempt = p.ndim < 2 or "embedding" in name or "logit_scale" in name or name.endswith("class_embedding")
        (no_decay if exempt else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)


def _clip_loss():
    from open_clip.loss import ClipLoss

    return ClipLoss()


def _context_length(model) -> int:
    return int(model.context_length)
