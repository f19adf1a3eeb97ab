"""How well a VAE gives back held-out faces: pixel figures, and what the judges still read in its reconstructions.

On ``n`` faces of the synthfaces *test* split (never trained on) each face is encoded, its posterior mean decoded
and the result stored as uint8, as a sampler's image would be. The figures:

- ``psnr``: 10 log10(1 / MSE), the MSE pooled over every pixel of every face, pixels in [0, 1] (infinite for a
  perfect reconstruction);
- ``l1``: the mean absolute pixel error, pixels in [0, 1];
- the judges' figures of the real faces and of their reconstructions, both area-averaged down to the judges' own
  size (the shipped judges read 32x32): ``mask_iou`` (the parsing judge's label map against the face's true mask
  at that size, ``evaluate_parsing``'s mean IoU) and ``attribute_accuracy`` (the attribute judge against the
  face's true attributes, pooled over every judged attribute where it is defined, from ``evaluate_attributes``),
  and ``difference``: reconstructed minus real, what the VAE costs the judges.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from mcdm.errors import ArgumentError
from mcdm.eval.judges import Judges, area_downsample, attribute_targets
from mcdm.eval.train_judges import evaluate_attributes, evaluate_parsing
from mcdm.pixels import to_model_range, to_uint8

JUDGED = ("mask_iou", "attribute_accuracy")


def psnr(real: np.ndarray, reconstructed: np.ndarray) -> float:
    """PSNR in dB of uint8 images against uint8 images (pixels read in [0, 1]); ``inf`` when they are equal."""
    mse = float(np.mean((real.astype(np.float64) / 255 - reconstructed.astype(np.float64) / 255) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def mean_l1(real: np.ndarray, reconstructed: np.ndarray) -> float:
    """Mean absolute error of uint8 images against uint8 images, pixels read in [0, 1]."""
    return float(np.mean(np.abs(real.astype(np.float64) - reconstructed.astype(np.float64)))) / 255


@torch.inference_mode()
def reconstruct(vae, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """uint8 faces (N, H, W, 3) encoded by ``vae`` (a diffusers AutoencoderKL), their posterior means decoded, as
    uint8 (N, H, W, 3)."""
    parameter = next(vae.parameters())
    out = []
    for start in range(0, len(images), batch_size):
        x = to_model_range(images[start:start + batch_size]).to(parameter.device, parameter.dtype)
        out.append(to_uint8(vae.decode(vae.encode(x).latent_dist.mode()).sample))
    return np.concatenate(out)


def judged(judges: Judges, images: torch.Tensor, masks: np.ndarray, targets: dict[str, torch.Tensor]) -> dict:
    """``mask_iou`` and pooled ``attribute_accuracy`` (with each attribute's) of images at the judges' size."""
    attributes = evaluate_attributes(judges.attributes, images, targets)
    total = sum(v["n"] for v in attributes.values())
    pooled = sum(v["accuracy"] * v["n"] for v in attributes.values()) / total if total else math.nan
    return {"mask_iou": evaluate_parsing(judges.parsing, images, masks)["mean_iou"],
            "attribute_accuracy": round(pooled, 4),
            "attributes": {name: v["accuracy"] for name, v in attributes.items()}}


def reconstruction_figures(vae, judges: Judges, *, n: int = 256, size: int = 64, seed: int = 0,
                           batch_size: int = 64) -> dict[str, Any]:
    """The figures of the module docstring for ``n`` held-out faces (synthfaces test split, ``seed``, ``size``)."""
    from mcdm.data.synthfaces import SynthFaces

    if n < 1:
        raise ArgumentError(f"n (held-out faces) must be at least 1, got {n}")
    judge_size = judges.parsing.image_size
    if judges.attributes.image_size != judge_size:
        raise ArgumentError(f"the judges read different sizes ({judge_size} and {judges.attributes.image_size})")
    if size % judge_size:
        raise ArgumentError(f"{size}x{size} faces do not average down to the judges' {judge_size}x{judge_size}: the "
                            f"size must be a multiple of {judge_size}")
    faces = SynthFaces(size=size, seed=seed, split="test", length=n)
    at_judge_size = SynthFaces(size=judge_size, seed=seed, split="test", length=n)  # the same faces, rendered there
    real = np.stack([faces[i].image for i in range(n)])
    reconstructed = reconstruct(vae, real, batch_size)
    masks = np.stack([at_judge_size[i].mask for i in range(n)])
    rows = [attribute_targets(faces.attributes(i)) for i in range(n)]
    targets = {name: torch.tensor([row[name] for row in rows]) for name in rows[0]}
    # at the judges' size, against the masks rendered there (the judges' own training targets)
    real_judged = judged(judges, area_downsample(to_model_range(real), judge_size), masks, targets)
    reconstructed_judged = judged(judges, area_downsample(to_model_range(reconstructed), judge_size), masks, targets)
    return {
        "faces": {"dataset": "synthfaces", "split": "test", "seed": seed, "size": size, "n": n},
        "judged_at": judge_size,
        "psnr": round(psnr(real, reconstructed), 3),
        "l1": round(mean_l1(real, reconstructed), 5),
        "real": real_judged,
        "reconstructed": reconstructed_judged,
        "difference": {name: round(reconstructed_judged[name] - real_judged[name], 4) for name in JUDGED},
    }


def figures_markdown(figures: dict[str, Any]) -> str:
    """The figures as a short Markdown section (a model card's, or the script's report)."""
    faces, at = figures["faces"], figures["judged_at"]
    real, rec, diff = figures["real"], figures["reconstructed"], figures["difference"]
    lines = [
        f"On {faces['n']} held-out faces (synthfaces {faces['split']} split, seed {faces['seed']}, "
        f"{faces['size']}x{faces['size']}), each encoded to its posterior mean and decoded:",
        "",
        f"- PSNR {figures['psnr']:.2f} dB; mean L1 {figures['l1']:.4f} (pixels in [0, 1]).",
        f"- The judges, real and reconstructed faces both area-averaged to {at}x{at}:",
        "",
        "| figure | real | reconstructed | difference |",
        "|---|---|---|---|",
        *(f"| {name} | {real[name]:.4f} | {rec[name]:.4f} | {diff[name]:+.4f} |" for name in JUDGED),
        *(f"| accuracy: {name} | {value:.4f} | {rec['attributes'][name]:.4f} | "
          f"{rec['attributes'][name] - value:+.4f} |" for name, value in real["attributes"].items()),
    ]
    return "\n".join(lines) + "\n"
