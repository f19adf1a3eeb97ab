"""Contrastive training of the small CLIP on SynthFaces image/caption pairs, resumable, and a retrieval check.

    python -m mcdm_text.train_clip --out runs/clip --steps 20000 --hard-negatives 1 --contrasts 8

``hard_negatives`` adds, to open_clip's ``ClipLoss``, that weight times a second cross-entropy: each image must
prefer its caption to ``contrasts`` *contrast captions* of the same face, each wrong about a different attribute
(``mcdm.data.captions.contrast_captions``; the hard negatives of NegCLIP, Yuksekgonul et al. 2023). Without it
the in-batch negatives almost always differ in hair colour, so the text tower never has to encode negation
("does not wear eyeglasses", "is not smiling") and a frozen tower hands the text model captions that have lost it.
With one contrast per image a stated smile is contradicted in about one image in ten; with eight, in most.
(On the synthetic faces neither made the small CLIP encode smiles: the smile is a one-pixel lift of the mouth
corners at 32x32, which its vision tower does not pick up within a few thousand steps.)

Files under ``--out``::

    checkpoint/   the latest checkpoint, replaced atomically every ``checkpoint_every`` steps: the CLIP folder
                  (clip_config.json + model.safetensors) plus optimizer.safetensors and trainer.json
    clip/         the trained CLIP alone (load_clip reads it; the text denoiser's clip_path points here)
    loss.csv      step, loss, lr, seconds (rows past the checkpoint a resumed run starts from are dropped)

Batch ``s`` is a pure function of ``(seed, s)``, so a resumed run sees the batches an uninterrupted run would.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes
from tqdm.auto import tqdm

from mcdm.data.captions import MAX_CONTRASTS
from mcdm.errors import CheckpointError, ConfigError
from mcdm_text.clip import (
    CLIP_CONFIG,
    build_clip,
    clip_config,
    images_to_tensor,
    load_clip,
    read_clip_config,
    save_clip,
)
from mcdm_text.modality import TextModality
from mcdm_text.tokens import tokenize_batch

CHECKPOINT = "checkpoint"
EXPORT = "clip"
LOSS_CSV = "loss.csv"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAINER_FILE = "trainer.json"
# settings a resumed run must share with the run it continues (others, like the step count, may change)
_RESUME_KEYS = ("batch_size", "size", "seed", "data_seed", "train_length", "lr", "lr_schedule", "weight_decay",
                "warmup", "hard_negatives", "contrasts")

Precision = Literal["fp32", "bf16"]
LRSchedule = Literal["cosine", "constant"]


def train_clip(
    out_dir: str | os.PathLike,
    steps: int,
    batch_size: int = 64,
    size: int = 32,
    seed: int = 0,
    *,
    config: dict | None = None,
    lr: float = 5e-4,
    lr_schedule: LRSchedule = "cosine",
    weight_decay: float = 0.1,
    warmup: int = 200,
    checkpoint_every: int = 500,
    log_every: int = 1,
    data_seed: int = 0,
    train_length: int = 100_000,
    hard_negatives: float = 0.0,
    contrasts: int = 1,
    num_workers: int = 0,
    device: str | torch.device = "cpu",
    precision: Precision = "fp32",
    progress: bool = True,
) -> Path:
    """Train (or resume training) the CLIP for ``steps`` steps in total; returns the exported ``clip/`` folder.

    An existing ``out_dir/checkpoint`` is resumed from its step; its settings must match these. The cosine
    schedule decays over ``steps``, so only a run resumed with the same ``steps`` repeats an uninterrupted one
    exactly (``lr_schedule="constant"`` makes any split repeat it).
    """
    if steps < 1 or batch_size < 2 or checkpoint_every < 1 or log_every < 1:
        raise ConfigError(f"train_clip: need steps >= 1, batch_size >= 2, checkpoint_every >= 1 and log_every >= 1, "
                          f"got {steps}, {batch_size}, {checkpoint_every}, {log_every}")
    if train_length < batch_size:
        raise ConfigError(f"train_clip: train_length {train_length} is smaller than one batch of {batch_size}")
    if hard_negatives < 0:
        raise ConfigError(f"train_clip: hard_negatives is a loss weight, at least 0; got {hard_negatives}")
    if not 1 <= contrasts <= MAX_CONTRASTS:
        raise ConfigError(f"train_clip: contrasts (contrast captions per image) must be 1 to {MAX_CONTRASTS}; "
                          f"got {contrasts}")
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"train_clip: unknown precision {precision!r}; choose fp32 or bf16")
    if lr_schedule not in ("cosine", "constant"):
        raise ConfigError(f"train_clip: unknown lr_schedule {lr_schedule!r}; choose cosine or constant")
    out_dir = Path(out_dir)
    device = torch.device(device)
    settings = {"batch_size": batch_size, "size": size, "seed": seed, "data_seed": data_seed,
                "train_length": train_length, "lr": lr, "lr_schedule": lr_schedule, "weight_decay": weight_decay,
                "warmup": warmup, "hard_negatives": hard_negatives}
    if contrasts > 1:  # only then, so runs from before the setting existed resume
        settings["contrasts"] = contrasts

    ckpt = out_dir / CHECKPOINT
    if (ckpt / TRAINER_FILE).is_file():
        model, config, optimizer, start = _resume(ckpt, settings, config, device)
    else:
        config = config or clip_config(image_size=size)
        if int(config["vision_cfg"]["image_size"]) != size:
            raise ConfigError(f"train_clip: the CLIP config's image_size {config['vision_cfg']['image_size']} "
                              f"is not the training size {size}")
        torch.manual_seed(seed)
        model = build_clip(config).to(device)
        optimizer = _make_optimizer(model, lr, weight_decay)
        start = 0
    if start > steps:
        raise ConfigError(f"train_clip: the checkpoint in {str(ckpt)!r} is at step {start}, past steps={steps}")
    out_dir.mkdir(parents=True, exist_ok=True)
    _trim_log(out_dir / LOSS_CSV, start)

    batches = _Batches(size, data_seed, train_length, batch_size, seed,
                       contrasts=contrasts if hard_negatives > 0 else 0)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, sampler=range(start, steps),
                                         num_workers=num_workers, persistent_workers=False)
    loss_fn = _clip_loss()
    model.train()
    t0 = time.perf_counter()
    bar = tqdm(total=steps, initial=start, desc="train clip", disable=not progress, dynamic_ncols=True)
    with open(out_dir / LOSS_CSV, "a", newline="") as log:
        writer = csv.writer(log)
        if log.tell() == 0:
            writer.writerow(["step", "loss", "lr", "seconds"])
        step = start
        for images, tokens, contrast in loader:
            lr_now = lr_at(step, steps, lr, warmup, lr_schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr_now
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                image_features = model.encode_image(images.to(device), normalize=True)
                text_features = model.encode_text(tokens.to(device), normalize=True)
                contrast_features = (model.encode_text(contrast.flatten(0, 1).to(device), normalize=True)
                                     .unflatten(0, contrast.shape[:2]) if hard_negatives else None)
            scale = model.logit_scale.exp()
            loss = loss_fn(image_features.float(), text_features.float(), scale)
            if contrast_features is not None:
                loss = loss + hard_negatives * contrast_loss(image_features.float(), text_features.float(),
                                                             contrast_features.float(), scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            step += 1
            bar.update(1)
            if step % log_every == 0 or step == steps:  # .item() waits for the device: only on logging steps
                value = loss.item()
                if not math.isfinite(value):
                    raise FloatingPointError(f"train_clip: the loss is {value} at step {step}; lower the lr")
                writer.writerow([step, f"{value:.6f}", f"{lr_now:.3e}", f"{time.perf_counter() - t0:.2f}"])
                bar.set_postfix(loss=f"{value:.4f}")
            if step % checkpoint_every == 0 or step == steps:
                log.flush()
                _save_checkpoint(ckpt, model, config, optimizer, step, settings)
    bar.close()
    model.eval()
    return save_clip(model, config, out_dir / EXPORT)


def lr_at(step: int, steps: int, lr: float, warmup: int, schedule: LRSchedule = "cosine") -> float:
    """Linear warm-up over ``warmup`` steps, then constant, or a cosine decay to 10% of ``lr`` at ``steps``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "constant":
        return lr
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


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


# --- checkpoints --------------------------------------------------------------------------------


def _save_checkpoint(folder: Path, model, config: dict, optimizer, step: int, settings: dict) -> None:
    state = optimizer.state_dict()
    tensors = {f"state.{index}.{name}": value.detach().cpu().contiguous() if torch.is_tensor(value)
               else torch.tensor(value) for index, entry in state["state"].items() for name, value in entry.items()}
    trainer = {"step": step, "settings": settings, "param_groups": state["param_groups"]}
    save_clip(model, config, folder, extra_files={
        OPTIMIZER_FILE: save_safetensors_bytes(tensors or {"empty": torch.zeros(0)}),
        TRAINER_FILE: (json.dumps(trainer, indent=2, default=list) + "\n").encode(),
    })


def _resume(folder: Path, settings: dict, config: dict | None, device: torch.device):
    try:
        trainer = json.loads((folder / TRAINER_FILE).read_text())
        saved, step, groups = trainer["settings"], int(trainer["step"]), trainer["param_groups"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot resume: {str(folder / TRAINER_FILE)!r} is unreadable ({exc})") from exc
    for key in _RESUME_KEYS:
        if key in saved and saved[key] != settings[key]:
            raise ConfigError(f"train_clip: cannot resume {str(folder)!r}: it was trained with {key}={saved[key]!r}, "
                              f"this run asks for {key}={settings[key]!r}")
    saved_config = read_clip_config(folder)
    if config is not None and config != saved_config:
        raise ConfigError(f"train_clip: cannot resume {str(folder)!r}: its {CLIP_CONFIG} differs from the config given")
    model, config = load_clip(folder)
    model = model.to(device)
    optimizer = _make_optimizer(model, settings["lr"], settings["weight_decay"])
    try:
        tensors = load_safetensors_bytes((folder / OPTIMIZER_FILE).read_bytes())
    except Exception as exc:
        raise CheckpointError(f"cannot read the optimizer state in {str(folder)!r}: {exc}") from exc
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key == "empty":
            continue
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return model, config, optimizer, step


def _trim_log(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint a run starts from (they are about to be redone)."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = [r for r in rows[1:] if r and int(r[0]) <= step]
    if len(kept) != len(rows) - 1:
        tmp = path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([rows[0], *kept])
        os.replace(tmp, path)


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


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mcdm_text.train_clip", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder (resumed if it holds a checkpoint)")
    parser.add_argument("--steps", type=int, required=True, help="total optimizer steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=32, help="image size in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--lr-schedule", choices=["cosine", "constant"], default="cosine")
    parser.add_argument("--warmup", type=int, default=200, help="linear warm-up steps")
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--log-every", type=int, default=10, help="steps between loss.csv rows")
    parser.add_argument("--num-workers", type=int, default=0, help="processes rendering batches")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--hard-negatives", type=float, default=0.0,
                        help="weight of the contrast-caption loss (0: open_clip's ClipLoss alone)")
    parser.add_argument("--contrasts", type=int, default=1,
                        help="contrast captions per image, each wrong about a different attribute "
                             f"(1 to {MAX_CONTRASTS})")
    parser.add_argument("--config", help="a clip_config.json to train (default: the small CLIP of mcdm_text.clip)")
    parser.add_argument("--eval-batches", type=int, default=4, help="test batches of 64 for the retrieval check")
    args = parser.parse_args(argv)
    folder = train_clip(args.out, args.steps, args.batch_size, args.size, args.seed, lr=args.lr,
                        lr_schedule=args.lr_schedule, warmup=args.warmup, checkpoint_every=args.checkpoint_every,
                        log_every=args.log_every, num_workers=args.num_workers, device=args.device,
                        precision=args.precision, hard_negatives=args.hard_negatives, contrasts=args.contrasts,
                        config=json.loads(Path(args.config).read_text()) if args.config else None)
    model, _ = load_clip(folder)
    model = model.to(args.device)
    if args.eval_batches > 0:
        accuracy = retrieval_accuracy(model, size=args.size, batches=args.eval_batches, device=args.device)
        print(f"caption->image top-1 among 64 (test split): {accuracy:.3f} (chance {1 / 64:.3f})")
    print(f"CLIP written to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
