"""Images per second of the shipped composition on a GPU: N = 3 (sketch, segmentation, text, own baselines as
shipped), 25 DPM-Solver++ steps, bf16, fused and unfused, eager and compiled, and the fraction of the GPU's bf16
peak that reaches (the FLOPs of one step counted by torch's FlopCounterMode).

    python benchmarks/bench_gpu.py --out bench.json [--batch-sizes 64,256,1024] [--time-budget 90]
    python benchmarks/bench_gpu.py --device cpu --precision fp32 --batch-sizes 2 --steps 2 --no-compile  # dry run

Eager cells run first at every batch size, then compiled ones at the largest; a cell that would not finish
within ``--time-budget`` seconds is recorded as skipped, so the run always ends with its JSON written.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

# dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, by a substring of the device name
BF16_PEAK_TFLOPS = (("H200", 989.4), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4), ("GH200", 989.4),
                    ("A100", 312.0), ("L40S", 362.1), ("L4", 121.0), ("A10", 125.0))
TARGET_IMAGES_PER_SECOND = 2000


def peak_tflops(name: str) -> float | None:
    return next((peak for key, peak in BF16_PEAK_TFLOPS if key in name), None)


def flops_per_image_step(composer, conditions) -> float:
    """FLOPs of one composed step (every network evaluation, own baselines included) for one image."""
    from torch.utils.flop_counter import FlopCounterMode

    predictor = composer.predictor(conditions, num_images=1)
    x = torch.randn(1, composer.channels, composer.sample_size, composer.sample_size, device=composer.device)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        predictor(x, torch.tensor(500))
    return float(counter.get_total_flops())


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="synthfaces-32")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--batch-sizes", default="64,256,1024")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-compile", action="store_true", help="eager cells only")
    parser.add_argument("--time-budget", type=float, default=90.0, help="seconds for all cells together")
    parser.add_argument("--out", default="bench-gpu.json")
    args = parser.parse_args()
    started = time.perf_counter()

    from mcdm.compose import Composer
    from mcdm.demo import EXAMPLES, example_inputs

    batches = [int(b) for b in args.batch_sizes.split(",")]
    result = {"device": args.device, "precision": args.precision, "steps": args.steps, "torch": torch.__version__,
              "cuda": torch.version.cuda, "python": platform.python_version(),
              "target_images_per_second": TARGET_IMAGES_PER_SECOND, "rows": []}
    try:
        name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
        base = Composer.from_pretrained(args.model, device=args.device, precision=args.precision, fuse="never")
        conditions = example_inputs(EXAMPLES / "face-0", list(base.models))
        flops = flops_per_image_step(base, conditions) * args.steps
    except Exception as exc:  # no GPU, no models: say so in the JSON the report reads
        result["error"] = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
        raise SystemExit(f"benchmark not run: {result['error']}")
    peak = peak_tflops(name)
    result.update(device=name, modalities=list(conditions), flops_per_image=flops, bf16_peak_tflops=peak)
    composers: dict[tuple[str, bool], Composer] = {}
    cells = [(fuse, False, b) for b in batches for fuse in ("always", "never")]
    if not args.no_compile:
        cells += [(fuse, True, batches[-1]) for fuse in ("always", "never")]
    last_cost = 0.0
    for fuse, compiled, batch in cells:
        row = {"fuse": fuse, "compiled": compiled, "batch": batch}
        left = args.time_budget - (time.perf_counter() - started)
        if left < last_cost * 1.5:
            result["rows"].append({**row, "skipped": f"time budget ({left:.0f} s left)"})
            continue
        cell_start = time.perf_counter()
        try:
            if (fuse, compiled) not in composers:
                composers[fuse, compiled] = (
                    Composer.from_pretrained(args.model, device=args.device, precision=args.precision, fuse=fuse,
                                             compile=True) if compiled else base.with_fusion(fuse))
            composer = composers[fuse, compiled]
            run = lambda: composer.generate_tensor(conditions, num_images=batch, steps=args.steps, seed=0,  # noqa: E731
                                                   progress=False)
            warm = time.perf_counter()
            run()  # warm-up: compilation, allocator, cuDNN autotuning, the text encoder's cache
            sync(args.device)
            row["warmup_seconds"] = time.perf_counter() - warm
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                run()
                sync(args.device)
                times.append(time.perf_counter() - t0)
            seconds = statistics.median(times)
            achieved = batch * flops / seconds / 1e12
            row.update(seconds=seconds, images_per_second=batch / seconds, tflops=achieved,
                       fraction_of_peak=achieved / peak if peak else None)
        except Exception as exc:  # one failing cell (out of memory, a compile error) must not lose the others
            row["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        last_cost = time.perf_counter() - cell_start
        result["rows"].append(row)
        print(json.dumps(row), flush=True)
        with open(args.out, "w") as f:  # after every cell: a run cut short still leaves its figures
            json.dump(result, f, indent=2)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
