"""Composition weights tuned on validation faces: held-out faces the evaluation never scores.

The evaluation scores test-split faces ``0 .. n`` and compares with ``n .. n + reference``; tuning reads faces
from ``VALIDATION_START`` on, far beyond both. The objective is the composition's worst figure relative to
the single model that controls it (the "within 10% of the single model" criterion), maximised by one sweep of
coordinate ascent over a grid of weights, starting from MCDM's unit weights.
"""

from __future__ import annotations

from typing import Sequence

from tqdm.auto import tqdm

from mcdm.data.synthfaces import SynthFaces
from mcdm.eval.evaluate import generate_row
from mcdm.eval.inputs import face_parts, targets_for
from mcdm.eval.rows import Row
from mcdm.eval.scoring import PART_FIGURE, score

VALIDATION_START = 100_000
GRID = (0.5, 0.75, 1.0, 1.25, 1.5)


def validation_faces(size: int, n: int) -> list:
    split = SynthFaces(size=size, seed=0, split="test", length=VALIDATION_START + n)
    return [split[VALIDATION_START + i] for i in range(n)]


def tune_weights(composer, judges, modalities: Sequence[str], *, n: int = 32, grid: Sequence[float] = GRID,
                 steps: int | None = None, scheduler: str | None = None, seed: int = 0, batch_size: int = 32,
                 progress: bool = True) -> tuple[dict[str, float], list[dict]]:
    """``(weights, trials)``: the best weights found and every (weights, objective) tried."""
    faces = validation_faces(composer.image_size, n)
    targets = targets_for(faces, "full")
    run = dict(steps=steps, scheduler=scheduler, seed=seed, batch_size=batch_size)

    def figures(row: Row) -> dict[str, float]:
        bar.update(1)
        return score(generate_row(composer, row, faces, targets, **run), targets, judges)

    parts = face_parts(composer.plugins, modalities)
    figure_of = {m: PART_FIGURE[parts[m][0]] for m in modalities if len(parts[m]) == 1}  # what each controls
    controlled = list(figure_of)
    trials_planned = len(controlled) + 1 + sum(len(grid) - (1.0 in grid) for _ in modalities)
    bar = tqdm(total=trials_planned, desc="tuning weights", disable=not progress)
    single = {m: figures(Row(m, (m,)))[figure_of[m]] for m in controlled}

    def objective(weights: dict[str, float]) -> float:
        got = figures(Row("tuning", tuple(modalities), weights=weights))
        return min(got[figure_of[m]] / max(single[m], 1e-9) for m in controlled)

    best = {m: 1.0 for m in modalities}
    trials = [{"weights": dict(best), "objective": objective(best)}]
    for modality in modalities:
        for value in grid:
            if value == best[modality]:
                continue
            candidate = {**best, modality: value}
            trials.append({"weights": candidate, "objective": objective(candidate)})
        best = max(trials, key=lambda trial: trial["objective"])["weights"]
    bar.close()
    return dict(best), trials

