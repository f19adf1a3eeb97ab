"""Seconds per sampling step for N = 1..3 ControlNet terms on one SD-family UNet: batched against one call per term.

    OMP_NUM_THREADS=1 python benchmarks/bench_controlnet_batching.py --repeats 15 --steps 10 --batch 1 --sample 32

One thread: on a machine whose cores other work shares, several threads wait on each other and the timings
scatter (docs/benchmarks.md).

Builds tiny random SD-family folders (mcdm_diffusers.testing: a UNet2DConditionModel, CLIP text encoder, VAE and
three ControlNets), loads them through mcdm's model folders, and samples the same composition (the empty-prompt
prior plus N ControlNet terms, shared baselines) with two predictors over the same terms, alternating, in one
process, after one warm-up run of each: GroupedEps (one UNet batch of N + 1 and N ControlNet calls per step) and
ComposedEps (N + 1 UNet calls and N ControlNet calls). Prints a markdown table: the median, minimum and maximum
over the repeats, and the largest difference between the two predictors' eps at one x_t (t = 900 and 100).
"""

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from mcdm.bench import cpu_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sample", type=int, default=32, help="latent side of the tiny UNet (images twice that)")
    args = parser.parse_args()

    import diffusers
    import transformers

    from mcdm.checkpoint import load_model
    from mcdm.combine import Baseline, TimeWindow
    from mcdm.grouped import GroupedEps
    from mcdm.plugins import make_plugin_manager
    from mcdm.predictor import ComposedEps, EpsModel, Term
    from mcdm.sampling import sample
    from mcdm.schedule import make_scheduler
    from mcdm_diffusers.folders import write_model_folder
    from mcdm_diffusers.testing import write_controlnet, write_pipeline

    plugins = make_plugin_manager(strict=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pipeline = write_pipeline(root / "pipeline", sample=args.sample)
        prior_model = load_model(write_model_folder(root / "prior", pipeline, checksums=False), plugins)
        prior = EpsModel(prior_model)
        controlnets = []
        for i in range(3):
            write_controlnet(root / f"cn{i}", pipeline, seed=i + 1)
            folder = write_model_folder(root / f"m{i}", pipeline, modality="sketch", controlnet=root / f"cn{i}",
                                        checksums=False)
            controlnets.append(EpsModel(load_model(folder, plugins)))
        image = 2 * args.sample
        generator = torch.Generator().manual_seed(0)
        rows = []
        for n in (1, 2, 3):
            terms = []
            for i in range(n):
                sketch = torch.where(torch.rand(args.batch, 1, image, image, generator=generator) > 0.9, 1.0, -1.0)
                terms.append(Term(name=f"cn{i}", model=controlnets[i], condition=sketch,
                                  null_condition=torch.zeros_like(sketch), weight=1.0, window=TimeWindow(),
                                  baseline=Baseline.SHARED))
            predictors = {"batched": GroupedEps(prior, terms, batch_size=args.batch),
                          "one UNet call per term": ComposedEps(prior, terms, batch_size=args.batch)}
            times = {name: [] for name in predictors}
            x = torch.randn(args.batch, 4, args.sample, args.sample, generator=torch.Generator().manual_seed(2))
            with torch.inference_mode():  # both paths compute the same eps, at a noisy and a late step
                gap = max((predictors["batched"](x, t) - predictors["one UNet call per term"](x, t)).abs().max().item()
                          for t in (torch.tensor(900), torch.tensor(100)))

            def run(predictor):
                scheduler = make_scheduler("ddim", prior_model.schedule_config)
                started = time.perf_counter()
                sample(predictor, scheduler, shape=(args.batch, 4, args.sample, args.sample), steps=args.steps,
                       generator=torch.Generator().manual_seed(1), progress=False)
                return (time.perf_counter() - started) / args.steps

            for predictor in predictors.values():
                run(predictor)  # warm-up: allocator, prompt encodings
            for _ in range(args.repeats):
                for name, predictor in predictors.items():
                    times[name].append(run(predictor))
            rows.append((n, times, gap))
    print("| ControlNet terms N | batched s/step (min-max) | one UNet call per term s/step (min-max) | ratio "
          "| max abs eps difference |")
    print("|---|---|---|---|---|")
    for n, times, gap in rows:
        b, s = times["batched"], times["one UNet call per term"]
        print(f"| {n} | {statistics.median(b):.4f} ({min(b):.4f}-{max(b):.4f}) | {statistics.median(s):.4f} "
              f"({min(s):.4f}-{max(s):.4f}) | {statistics.median(s) / statistics.median(b):.2f} | {gap:.1e} |")
    print(f"\nMachine: {cpu_model()}, torch threads {torch.get_num_threads()}, python {platform.python_version()}, "
          f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}. "
          f"{args.repeats} repeats of {args.steps} DDIM steps, batch {args.batch}, latents {args.sample}x{args.sample}.")


if __name__ == "__main__":
    main()
