"""Warm start against training from scratch: the hair colour modality (examples/plugins/mcdm-hair), trained twice
with the same recipe, once from random weights and once from the shipped prior (``init_from``).

Every ``--every`` steps each run's EMA checkpoint is composed with the shipped prior (the hair model alone, so its
samples are its own) and scored by its own figure: the attribute judge's hair colour accuracy on ``--n`` held-out
faces given their hair colour. The target is the figure the from-scratch run reaches at its last step; the
report gives the training time each run took to reach it, and their ratio.

    python benchmarks/warm_start.py --steps 60 --every 20 --batch-size 8 --n 32 --out warm-start
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import torch

from mcdm.checkpoint import load_model
from mcdm.compose import Composer
from mcdm.data.synthfaces import SynthFaces
from mcdm.eval.judges import Judges
from mcdm.pretrained import resolve
from mcdm.train import DataConfig, TrainConfig, export_checkpoint, train

STARTS = {"from scratch": None, "warm start (init_from: the shipped prior)": "prior"}


def hair_accuracy(model_folder: Path, prior, judges: Judges, n: int, steps: int) -> float:
    composer = Composer(prior, {"hair": load_model(model_folder, composer_plugins())})
    faces = SynthFaces(size=32, seed=0, split="test", length=n)
    colours = [face.attributes.hair_color for face in faces]
    images = composer.generate_tensor([{"hair": c} for c in colours], steps=steps, seed=0, progress=False)
    predicted = judges.attributes.predict(images)
    return sum(p["hair_color"] == c for p, c in zip(predicted, colours)) / n


def composer_plugins():
    from mcdm.plugins import make_plugin_manager

    return make_plugin_manager()


def seconds_at(run: Path) -> dict[int, float]:
    with open(run / "log.csv", newline="") as f:
        return {int(row["step"]): float(row["seconds"]) for row in csv.DictReader(f)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--sample-steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("warm-start"))
    args = parser.parse_args()
    shipped = resolve("synthfaces-32")
    plugins = composer_plugins()
    prior = load_model(shipped / "prior", plugins)
    judges = Judges.load(resolve("judges-32"))
    curves = {}
    for label, start in STARTS.items():
        run = args.out / ("scratch" if start is None else "warm")
        if not (run / "model").is_dir():  # a run already trained is scored again, not retrained
            train(TrainConfig(out=str(run), modality="hair",
                              init_from=None if start is None else str(shipped / start),
                              data=DataConfig(length=4000), steps=args.steps, batch_size=args.batch_size,
                              warmup_steps=min(200, args.steps // 5), checkpoint_every=args.every,
                              log_every=args.every, keep_checkpoints=args.steps // args.every + 1, sample_every=0))
        seconds = seconds_at(run)
        curves[label] = []
        for step in range(args.every, args.steps + 1, args.every):
            with tempfile.TemporaryDirectory() as tmp:
                folder = export_checkpoint(run, Path(tmp) / "model", step)
                accuracy = hair_accuracy(folder, prior, judges, args.n, args.sample_steps)
            curves[label].append({"step": step, "seconds": seconds[step], "hair_accuracy": accuracy})
            print(label, curves[label][-1], flush=True)
    scratch, warm = curves.values()
    target = scratch[-1]["hair_accuracy"]
    reached = next((p for p in warm if p["hair_accuracy"] >= target), None)
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "threads": torch.get_num_threads(),
              "curves": curves, "target": target,
              "fraction_of_scratch_time": None if reached is None else reached["seconds"] / scratch[-1]["seconds"]}
    (args.out / "warm-start.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
