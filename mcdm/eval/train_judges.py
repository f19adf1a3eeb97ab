"""Train both judges on the synthfaces *train* split, then measure their ceilings on the *test* split.

    mcdm train judges configs/judges/judges-32.yaml out=DIR [KEY=VALUE ...]

writes ``DIR/parsing`` and ``DIR/attributes`` (each ``config.json`` + ``model.safetensors``),
``DIR/judges.json`` and ``DIR/MODEL_CARD.md``: how the judges were trained (data, steps, batch, seconds,
machine) and how well they read real held-out faces (parsing mean IoU against the true masks, accuracy per
attribute, with sample counts). Those numbers are the judges' ceilings: a generated face cannot be scored
more reliably than a real one is read. The test split is used for nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import MISSING
from tqdm.auto import tqdm

from mcdm.atomic import write_text_atomic
from mcdm.config_reference import key
from mcdm.data.attributes import record_to_attributes
from mcdm.data.cache import SynthCache, load_or_build_cache
from mcdm.data.labels import LABELS
from mcdm.eval.augment import Augmentation, degrade, mirror
from mcdm.errors import ConfigError
from mcdm.eval.judges import IGNORE_TARGET, AttributeJudge, Judges, ParsingJudge, attribute_targets
from mcdm.eval.metrics import mean_iou_batch, per_class_iou
from mcdm.pixels import to_model_range
from mcdm.training.schedule import learning_rate
from mcdm.training.trainer import TrainingResult

REPORT_FILE = "judges.json"
CARD_FILE = "MODEL_CARD.md"

EVAL_DEGRADATION = Augmentation(
    flip=0.0, brightness=0.05, contrast=0.05, saturation=0.05, channel_gain=0.02,
    blur=1.0, blur_sigma_min=0.5, blur_sigma_max=0.5, noise=1.0, noise_sigma_max=0.06,
)  # fmt: skip
"""The fixed degradation of the robustness check: every test face blurred (0.5 px), noised and jittered."""


@dataclass
class JudgeTrainConfig:
    """Everything that decides a judge training run (``configs/judges/judges-32.yaml`` is the shipped one)."""

    out: str = key(MISSING, "folder for parsing/, attributes/, judges.json and MODEL_CARD.md (required)")
    cache_dir: str | None = key(None, "where rendered synthfaces splits are cached (null: ~/.cache/mcdm)")
    size: int = key(32, "image size in pixels")
    seed: int = key(0, "dataset seed (both splits) and training seed")
    n_train: int = key(40_000, "train-split faces rendered once and cached")
    n_test: int = key(2_000, "held-out test-split faces the ceilings are measured on")
    parsing_steps: int = key(5_000, "optimiser steps of the parsing judge")
    attribute_steps: int = key(5_000, "optimiser steps of the attribute judge")
    batch_size: int = key(64, "faces per step")
    lr: float = key(3e-3, "AdamW learning rate after warm-up (cosine decay to 0 over each judge's steps)")
    weight_decay: float = key(1e-4, "AdamW weight decay")
    warmup_steps: int = key(100, "linear learning-rate warm-up steps")
    threads: int = key(1, "torch CPU threads")
    parsing_channels: list[int] = key(doc="the parsing UNet's widths at full, 1/2, 1/4 and 1/8 resolution",
                                      factory=lambda: [16, 32, 64, 128])
    attribute_channels: list[int] = key(doc="the attribute CNN's widths, stage by stage",
                                        factory=lambda: [24, 48, 96, 128])
    augmentation: Augmentation = key(doc="training-time augmentation (the augmentation.* keys)", factory=Augmentation)


# where a run writes, not what decides it: left out of the report's copy of the config
_PLACE_KEYS = ("out", "cache_dir")


@dataclass
class SplitArrays:
    """One split in memory: uint8 images (N, S, S, 3), int64 masks (N, S, S), int64 targets per attribute."""

    images: torch.Tensor
    masks: torch.Tensor
    targets: dict[str, torch.Tensor]

    @classmethod
    def from_cache(cls, cache: SynthCache) -> "SplitArrays":
        rows = [attribute_targets(record_to_attributes(r)) for r in cache.attributes]
        targets = {name: torch.tensor([r[name] for r in rows], dtype=torch.int64) for name in rows[0]}
        return cls(torch.from_numpy(np.array(cache.images)), torch.from_numpy(np.array(cache.masks)).long(), targets)


# ---------------------------------------------------------------- training


LossFn = Callable[[Any, torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(network output, mirrored masks of the batch, indices of the batch in the split)``."""


def _fit(
    net: torch.nn.Module,
    loss_fn: LossFn,
    data: SplitArrays,
    steps: int,
    config: JudgeTrainConfig,
    generator: torch.Generator,
    desc: str,
) -> dict[str, Any]:
    """The shared loop: random batches, mirror + degrade, AdamW with warm-up and cosine decay."""
    net.train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: learning_rate(
        step, peak=1.0, steps=steps, warmup=config.warmup_steps))
    n, losses, start, cpu_start = data.images.shape[0], [], time.perf_counter(), time.process_time()
    with tqdm(range(steps), desc=desc, unit="step", mininterval=2.0) as bar:
        for step in bar:
            index = torch.randint(n, (config.batch_size,), generator=generator)
            x = to_model_range(data.images[index])
            x, masks = mirror(x, data.masks[index], config.augmentation.flip, generator)
            x = degrade(x, config.augmentation, generator).contiguous(memory_format=torch.channels_last)
            loss = loss_fn(net(x), masks, index)  # type: ignore[arg-type]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    net.eval().to(memory_format=torch.contiguous_format)
    return {
        "steps": steps,
        "seconds": round(time.perf_counter() - start, 1),  # wall clock
        "cpu_seconds": round(time.process_time() - cpu_start, 1),  # CPU time of this process (all its threads)
        "final_loss": round(float(np.mean(losses[-100:])), 5),
    }


def train_parsing_judge(
    data: SplitArrays, config: JudgeTrainConfig, generator: torch.Generator
) -> tuple[ParsingJudge, dict[str, Any]]:
    """A parsing judge trained with per-pixel cross-entropy on the label maps of ``data``."""
    judge = ParsingJudge.build(image_size=config.size, channels=list(config.parsing_channels))
    def loss_fn(logits: torch.Tensor, masks: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, masks)

    stats = _fit(judge.net, loss_fn, data, config.parsing_steps, config, generator, "parsing judge")
    return judge, stats


def train_attribute_judge(
    data: SplitArrays, config: JudgeTrainConfig, generator: torch.Generator
) -> tuple[AttributeJudge, dict[str, Any]]:
    """An attribute judge trained with the summed cross-entropy of its heads, undefined targets left out."""
    judge = AttributeJudge.build(image_size=config.size, channels=list(config.attribute_channels))

    def loss_fn(logits: dict[str, torch.Tensor], masks: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return sum(  # type: ignore[return-value]
            F.cross_entropy(logits[name], data.targets[name][index], ignore_index=IGNORE_TARGET)
            for name in judge.heads
            if (data.targets[name][index] != IGNORE_TARGET).any()
        )

    stats = _fit(judge.net, loss_fn, data, config.attribute_steps, config, generator, "attribute judge")
    return judge, stats


# ---------------------------------------------------------------- evaluation


def evaluate_parsing(judge: ParsingJudge, images: torch.Tensor | np.ndarray, masks: np.ndarray) -> dict[str, Any]:
    """Mean IoU (per image, then averaged), per-class IoU pooled over all images, and pixel accuracy."""
    predicted = judge.parse(images)
    classes = per_class_iou(predicted, masks)
    return {
        "mean_iou": round(mean_iou_batch(predicted, masks), 4),
        "pixel_accuracy": round(float(np.mean(predicted == masks)), 4),
        "per_class_iou": {name: None if np.isnan(v) else round(float(v), 4) for name, v in zip(LABELS, classes)},
        "n_images": int(len(masks)),
    }


def evaluate_attributes(
    judge: AttributeJudge, images: torch.Tensor | np.ndarray, targets: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """Accuracy of each head over the faces where its attribute is defined, with that count."""
    logits = judge.logits(images)
    result = {}
    for name in judge.heads:
        defined = targets[name] != IGNORE_TARGET
        correct = (logits[name].argmax(dim=1) == targets[name])[defined]
        result[name] = {"accuracy": round(float(correct.float().mean()), 4), "n": int(defined.sum())}
    return result


def evaluate(judges: Judges, data: SplitArrays, seed: int) -> dict[str, Any]:
    """Both judges on clean test faces and on the same faces degraded by ``EVAL_DEGRADATION``."""
    clean = to_model_range(data.images)
    degraded = degrade(clean, EVAL_DEGRADATION, torch.Generator().manual_seed(seed))
    masks = data.masks.numpy()
    return {
        "parsing": evaluate_parsing(judges.parsing, clean, masks),
        "attributes": evaluate_attributes(judges.attributes, clean, data.targets),
        "degraded": {
            "degradation": dataclasses.asdict(EVAL_DEGRADATION),
            "parsing": evaluate_parsing(judges.parsing, degraded, masks),
            "attributes": evaluate_attributes(judges.attributes, degraded, data.targets),
        },
    }


# ---------------------------------------------------------------- the run


def _machine(threads: int) -> dict[str, Any]:
    return {
        "cpu_cores": os.cpu_count(),
        "torch_threads": threads,
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": "cpu",
    }


def run(config: JudgeTrainConfig, resume: bool) -> TrainingResult:
    """``mcdm train judges CONFIG``: train, and print the ceilings. A run takes minutes: it does not checkpoint."""
    if resume:
        raise ConfigError("mcdm train judges does not checkpoint (a run takes minutes): run it again without --resume")
    report = train_judges(config)
    return TrainingResult(Path(config.out), _summary(report) + f"\njudges written to {config.out}")


def train_judges(config: JudgeTrainConfig) -> dict[str, Any]:
    """Train both judges, save them under ``out``, measure them on the test split, write ``judges.json``."""
    out, cache_dir = Path(config.out).expanduser(), config.cache_dir
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    machine = _machine(config.threads)
    start = time.perf_counter()
    splits = {
        split: SplitArrays.from_cache(load_or_build_cache(config.size, n, config.seed, split, cache_dir, workers=1))
        for split, n in (("train", config.n_train), ("test", config.n_test))
    }
    train, test = splits["train"], splits["test"]
    data_seconds = round(time.perf_counter() - start, 1)

    generator = torch.Generator().manual_seed(config.seed)
    parsing, parsing_stats = train_parsing_judge(train, config, generator)
    attributes, attribute_stats = train_attribute_judge(train, config, generator)
    judges = Judges(parsing, attributes)
    for judge, stats in ((parsing, parsing_stats), (attributes, attribute_stats)):
        data = f"synthfaces size={config.size} seed={config.seed} split=train n={config.n_train}"
        judge.config["training"] = {"data": data, "batch_size": config.batch_size, **stats}
    judges.save(out)

    start = time.perf_counter()
    ceilings = evaluate(judges, test, config.seed)
    report = {
        "data": {
            "dataset": "synthfaces",
            "size": config.size,
            "seed": config.seed,
            "train": {"split": "train", "n": config.n_train},
            "test": {"split": "test", "n": config.n_test, "note": "never used in training"},
            "render_and_load_seconds": data_seconds,
        },
        "training": {
            "batch_size": config.batch_size,
            "parsing": {**parsing_stats, "parameters": parsing.num_parameters()},
            "attributes": {**attribute_stats, "parameters": attributes.num_parameters()},
            "total_seconds": round(parsing_stats["seconds"] + attribute_stats["seconds"], 1),
            "total_cpu_seconds": round(parsing_stats["cpu_seconds"] + attribute_stats["cpu_seconds"], 1),
            "config": {k: v for k, v in dataclasses.asdict(config).items() if k not in _PLACE_KEYS},
        },
        "machine": machine,
        "definitions": {
            "mean_iou": "mcdm.eval.metrics.mean_iou_batch: per test image, mean IoU over the classes present in "
            "its true mask; then the mean over images",
            "per_class_iou": "mcdm.eval.metrics.per_class_iou: IoU of each class pooled over all test images",
            "accuracy": "share of test faces whose attribute the head reads right, over faces where the attribute "
            "is defined (no hair colour for bald faces, no beard for women); n is that count",
        },
        **ceilings,
        "evaluation_seconds": round(time.perf_counter() - start, 1),
    }
    write_text_atomic(out / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    (out / CARD_FILE).write_text(model_card(report), encoding="utf-8")
    return report


def model_card(report: dict[str, Any]) -> str:
    """A short MODEL_CARD.md for a judges folder, written from its ``judges.json`` report."""
    data, training, machine = report["data"], report["training"], report["machine"]
    parsing, degraded = report["parsing"], report["degraded"]
    rows = "\n".join(
        f"| {name} | {v['accuracy']:.4f} | {degraded['attributes'][name]['accuracy']:.4f} | {v['n']} |"
        for name, v in report["attributes"].items()
    )
    load = machine["load_average_at_start"]
    busy = " (other jobs shared the cores, so wall-clock times are pessimistic)" if load and load[0] > 1.5 else ""
    classes = ", ".join(f"{k} {v:.2f}" for k, v in parsing["per_class_iou"].items() if v is not None)
    return f"""# judges-{data['size']}: parsing and attribute judges for {data['size']}x{data['size']} synthfaces

Two small networks that read a generated face back, so that mcdm's evaluation can check it against its conditions
(`mcdm.eval.judges`: `Judges.load(folder)`, `ParsingJudge.parse`, `AttributeJudge.predict` / `features`).

- `parsing/`: tiny UNet ({training['parsing']['parameters']:,} parameters), 19-class CelebAMask-HQ label map.
- `attributes/`: small CNN ({training['attributes']['parameters']:,} parameters), heads
  {', '.join(report['attributes'])}; `features` are its {training['config']['attribute_channels'][-1]}-d pooled
  penultimate activations (for the Fréchet distance).

Each folder is `config.json` + `model.safetensors` (no pickle).

## Training
- Data: synthfaces, {data['size']}x{data['size']}, seed {data['seed']}, **train** split, {data['train']['n']:,} faces.
- Steps: parsing {training['parsing']['steps']:,}, attributes {training['attributes']['steps']:,};
  batch {training['batch_size']}; AdamW, lr {training['config']['lr']}, {training['config']['warmup_steps']} warm-up
  steps, cosine decay.
- Augmentation: left-right mirror (left/right labels swapped), colour jitter, Gaussian blur, Gaussian noise
  (`mcdm.eval.augment.Augmentation`, values in `judges.json`), so that slightly imperfect samples are read too.
- Hair colour is not learned or scored for bald faces, beard not for women (`mcdm.data.captions.describable`).
- Time: parsing {training['parsing']['seconds']:.0f} s, attributes {training['attributes']['seconds']:.0f} s
  wall clock ({training['total_cpu_seconds']:.0f} s CPU time in all), plus {data['render_and_load_seconds']:.0f} s
  rendering (or loading the cached) data.
- Hardware: CPU only, {machine['cpu_cores']} cores ({machine['processor']}), torch {machine['torch']} with
  {machine['torch_threads']} thread(s); load average {machine['load_average_at_start']} at the start{busy}.
- Reproduce: `mcdm train judges configs/judges/judges-32.yaml out=DIR`.

## Ceilings on held-out faces
Measured on {data['test']['n']:,} faces of the synthfaces **test** split (seed {data['seed']}), never used in training.
A generated face cannot be judged more reliably than this.

- Parsing mean IoU {parsing['mean_iou']:.4f} over {parsing['n_images']:,} faces (per face: mean IoU over the
  classes in its true mask; then the mean over faces); pixel accuracy {parsing['pixel_accuracy']:.4f}.
  The same faces degraded (`EVAL_DEGRADATION`: blur 0.5 px, Gaussian noise of std up to 0.06 in [-1, 1] units,
  colour jitter up to 5%): {degraded['parsing']['mean_iou']:.4f}.
- Per-class IoU, pooled over the faces: {classes}.

| attribute | accuracy | degraded | faces (n) |
|---|---|---|---|
{rows}

## Limits
Trained on synthetic faces only: meaningful for synthfaces-like {data['size']}x{data['size']} images, not for
photographs. Tiny parts (earrings `ear_r`, lips, ears) are read least reliably; gender is the hardest attribute
(its cues are lip colour, whose ranges overlap between the sexes, and brow thickness, a fraction of a pixel here).
"""


def _summary(report: dict[str, Any]) -> str:
    lines = [f"parsing mean IoU {report['parsing']['mean_iou']:.4f} on {report['parsing']['n_images']} test faces"]
    lines += [f"{name:>10}: {v['accuracy']:.4f} (n={v['n']})" for name, v in report["attributes"].items()]
    training, threads = report["training"], report["machine"]["torch_threads"]
    wall, cpu = training["total_seconds"], training["total_cpu_seconds"]
    lines.append(f"training {wall:.0f} s wall, {cpu:.0f} s CPU, {threads} thread(s)")
    return "\n".join(lines)
