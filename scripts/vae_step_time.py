"""Seconds per training step of the 64x64 VAE in fp32 and under bf16 autocast, side by side in one process.

    python scripts/vae_step_time.py [--threads 1] [--steps 3] [KEY=VALUE ...]

KEY=VALUE override configs/vae/vae-64.yaml (e.g. "block_out_channels=[64,128]"). Each precision runs ``--steps``
steps (encode, sample, decode, L1, AdamW) on a random batch, twice, alternating; the faster pass of each is
printed, with the ratio.
"""

import argparse
import time

import torch

from mcdm.config import load_config
from mcdm.train_vae import VaeTrainConfig, build_vae


def step_seconds(vae, x: torch.Tensor, steps: int, bf16: bool) -> float:
    optimizer = torch.optim.AdamW(vae.parameters(), 1e-4)
    start = time.perf_counter()
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            reconstruction = vae.decode(vae.encode(x).latent_dist.sample()).sample
        loss = (reconstruction.float() - x).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(VaeTrainConfig, "configs/vae/vae-64.yaml", ["out=unused", *args.overrides])
    torch.manual_seed(0)
    vae = build_vae(config)
    x = torch.rand(config.batch_size, 3, config.data.size, config.data.size) * 2 - 1
    best = {"fp32": float("inf"), "bf16": float("inf")}
    for _ in range(2):
        for precision in best:
            best[precision] = min(best[precision], step_seconds(vae, x, args.steps, precision == "bf16"))
    print(f"widths {list(config.block_out_channels)}, batch {config.batch_size}, {args.threads} thread(s): "
          f"fp32 {best['fp32']:.2f} s, bf16 {best['bf16']:.2f} s a step (fp32 / bf16 = {best['fp32'] / best['bf16']:.2f})")


if __name__ == "__main__":
    main()
