"""``mcdm bench``: sampling speed of compositions of N = 0..3 modalities, against a hand-written floor.

The floor is the same denoiser calls in a minimal loop (prior + one call per modality, each output converted
to eps as its model's parameterisation says, the MCDM sum written inline, the same scheduler), with the
conditions encoded beforehand. mcdm runs unfused (one call per model) and fused (models of one architecture
in one call: mcdm.fused); its overhead is the ratio of the unfused run to the floor, all three measured side
by side in one process, alternating, the median of ``repeats`` runs each.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from mcdm.compose import Composer
from mcdm.schedule import make_scheduler


@dataclass
class Timing:
    modalities: tuple[str, ...]
    batch_size: int
    steps: int
    mcdm_seconds: float
    floor_seconds: float
    fused_seconds: float

    @property
    def overhead(self) -> float:
        return self.mcdm_seconds / self.floor_seconds - 1

    @property
    def fused_speedup(self) -> float:
        return self.mcdm_seconds / self.fused_seconds

    @property
    def images_per_second(self) -> float:
        return self.batch_size / self.mcdm_seconds

    @property
    def step_ms(self) -> float:
        return 1000 * self.mcdm_seconds / self.steps

    def row(self) -> dict:
        return {**asdict(self), "overhead": self.overhead, "images_per_second": self.images_per_second,
                "step_ms": self.step_ms, "fused_speedup": self.fused_speedup}


@torch.inference_mode()
def floor(composer: Composer, conditions: dict[str, torch.Tensor], batch_size: int, steps: int, scheduler: str,
          seed: int) -> torch.Tensor:
    """The least code that makes the same network calls: eps = eps_u + sum_i (eps_i - eps_u), one step each.

    Each call goes through its EpsModel, so a v- or x0-prediction output is converted to eps before the sum.
    """
    sched = make_scheduler(scheduler, composer.schedule_config)
    sched.set_timesteps(steps)
    generator = torch.Generator().manual_seed(seed)
    size = composer.sample_size
    x = torch.randn(batch_size, composer.channels, size, size, generator=generator) * sched.init_noise_sigma
    x = x.to(composer.device)
    prior = composer.prior
    models = [(composer.models[name], cond.to(composer.device)) for name, cond in conditions.items()]
    for t in sched.timesteps:
        x_in = sched.scale_model_input(x, t)
        eps_u = prior(x_in, t, None)
        eps = eps_u
        for model, cond in models:
            eps = eps + (model(x_in, t, cond) - eps_u)
        x = sched.step(eps, t, x).prev_sample
    return x


def time_once(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench(composer: Composer, inputs: dict[str, object], *, batch_sizes: Sequence[int] = (1, 16, 64),
          steps: int = 20, scheduler: str = "ddim", repeats: int = 3, seed: int = 0,
          progress: Callable[[str], None] = print) -> list[Timing]:
    """Time every prefix of the modalities (N = 0..len) at every batch size, mcdm unfused, fused and the floor
    alternating (``composer``'s own fusion setting is not used: both variants are timed). The floor computes MCDM
    against the shared prior, so mcdm is timed on the same formula: every request sets every baseline shared,
    whatever the composition's defaults."""
    composer, fused = composer.with_fusion("never"), composer.with_fusion("always")
    names = list(inputs)
    timings = []
    for n in range(len(names) + 1):
        given = {name: inputs[name] for name in names[:n]}
        shared = {name: {"baseline": "shared"} for name in given}
        prepared = composer.prepare(given)
        for batch in batch_sizes:
            conds = {k: v.unsqueeze(0).expand(batch, *v.shape) for k, v in prepared.items()}
            run_mcdm = lambda: composer.generate_tensor(given, num_images=batch, steps=steps,  # noqa: E731
                                                        scheduler=scheduler, seed=seed, settings=shared,
                                                        progress=False)
            run_fused = lambda: fused.generate_tensor(given, num_images=batch, steps=steps,  # noqa: E731
                                                      scheduler=scheduler, seed=seed, settings=shared,
                                                      progress=False)
            run_floor = lambda: floor(composer, conds, batch, steps, scheduler, seed)  # noqa: E731
            run_mcdm(), run_fused(), run_floor()  # warm-up: allocator, lazy init, text-encoder cache
            mcdm_times, fused_times, floor_times = [], [], []
            for _ in range(repeats):
                mcdm_times.append(time_once(run_mcdm))
                fused_times.append(time_once(run_fused))
                floor_times.append(time_once(run_floor))
            timing = Timing(tuple(names[:n]), batch, steps, statistics.median(mcdm_times),
                            statistics.median(floor_times), statistics.median(fused_times))
            progress(f"N={n} batch={batch}: {timing.images_per_second:.2f} images/s, {timing.step_ms:.1f} ms/step, "
                     f"overhead {100 * timing.overhead:+.1f}%, fused {timing.fused_speedup:.2f}x")
            timings.append(timing)
    return timings


def speed_report(composer: Composer, batch_sizes: Sequence[int], *, steps: int, scheduler: str, repeats: int,
                 out: Path, command: str, echo: Callable[[str], None] = print) -> None:
    """``mcdm bench``'s timings on the first example face's inputs: bench.md, bench.json and latency.png."""
    from mcdm.demo import EXAMPLES, example_inputs

    inputs = example_inputs(EXAMPLES / "face-0", list(composer.modalities))
    timings = bench(composer, inputs, batch_sizes=batch_sizes, steps=steps, scheduler=scheduler, repeats=repeats,
                    progress=echo)
    (out / "bench.md").write_text(markdown(timings, machine(), command))
    (out / "bench.json").write_text(json.dumps({"machine": machine(), "command": command,
                                                "timings": [t.row() for t in timings]}, indent=2) + "\n")
    plot(timings, out / "latency.png")
    echo(f"wrote {out / 'bench.md'}, {out / 'bench.json'} and {out / 'latency.png'}")


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def machine() -> dict:
    import diffusers

    return {
        "processor": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "device": "cpu",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
    }


def markdown(timings: Sequence[Timing], info: dict, command: str) -> str:
    lines = [
        "| modalities | N | batch | images/s | ms/step | floor ms/step | overhead | fused ms/step | fused speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in timings:
        lines.append(f"| {' + '.join(t.modalities) or 'prior only'} | {len(t.modalities)} | {t.batch_size} | "
                     f"{t.images_per_second:.2f} | {t.step_ms:.1f} | {1000 * t.floor_seconds / t.steps:.1f} | "
                     f"{100 * t.overhead:+.1f}% | {1000 * t.fused_seconds / t.steps:.1f} | {t.fused_speedup:.2f}x |")
    facts = ", ".join(f"{k} {v}" for k, v in info.items())
    return "\n".join(lines) + f"\n\nMachine: {facts}. Command: `{command}`.\n"


def plot(timings: Sequence[Timing], path) -> None:
    """Per-step latency against N, one line per batch size (mcdm solid, floor dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for batch in sorted({t.batch_size for t in timings}):
        rows = [t for t in timings if t.batch_size == batch]
        ns = [len(t.modalities) for t in rows]
        line, = ax.plot(ns, [t.step_ms for t in rows], marker="o", label=f"batch {batch}")
        ax.plot(ns, [1000 * t.floor_seconds / t.steps for t in rows], linestyle="--", color=line.get_color())
    ax.set_xlabel("modalities composed (N)")
    ax.set_ylabel("ms per sampling step")
    ax.set_yscale("log")
    ax.set_xticks(sorted({len(t.modalities) for t in timings}))
    ax.set_title("mcdm (solid) vs hand-written floor (dashed)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


SAMPLER_SETTINGS = (("ddpm", 1000), ("ddim", 50), ("dpm++", 20), ("dpm++", 10))


def steps_vs_quality(composer: Composer, judges, *, n: int, settings=SAMPLER_SETTINGS, seed: int = 0) -> list[dict]:
    """The evaluation figures of the full composition under each (scheduler, steps), with its sampling time."""
    from mcdm.eval.evaluate import evaluate
    from mcdm.eval.rows import Row

    everything = [Row(" + ".join(composer.modalities), tuple(composer.modalities))]
    rows = []
    for scheduler, steps in settings:
        result = evaluate(composer, judges, everything, n=n, steps=steps, scheduler=scheduler, seed=seed,
                          diversity_faces=0, progress=False)
        row = result["rows"][0]
        rows.append({"scheduler": scheduler, "steps": steps, "n": n, "seconds": row["seconds"], **row["figures"]})
    return rows


def quality_report(composer: Composer, judges, *, n: int, out: Path, command: str) -> str:
    """``mcdm bench --quality-n``: ``steps_vs_quality`` written to quality.md and quality.json; its table."""
    rows = steps_vs_quality(composer, judges, n=n)
    (out / "quality.md").write_text(quality_markdown(rows) + f"Command: `{command}`.\n")
    (out / "quality.json").write_text(json.dumps({"command": command, "rows": rows}, indent=2) + "\n")
    return quality_markdown(rows)


def quality_markdown(rows: Sequence[dict]) -> str:
    """Each setting's figures and their change relative to the first (the reference, e.g. DDPM 1000 steps)."""
    from mcdm.eval.scoring import FIGURES

    reference = rows[0]
    lines = ["| sampler | steps | " + " | ".join(FIGURES) + " | seconds |", "|---|---|" + "---|" * (len(FIGURES) + 1)]
    for row in rows:
        cells = [f"{row[f]:.3f} ({100 * (row[f] / reference[f] - 1):+.1f}%)" if reference[f] else f"{row[f]:.3f}"
                 for f in FIGURES]
        lines.append(f"| {row['scheduler']} | {row['steps']} | " + " | ".join(cells) + f" | {row['seconds']:.0f} |")
    return "\n".join(lines) + f"\n\n{rows[0]['n']} held-out faces per setting; changes relative to the first row.\n"
