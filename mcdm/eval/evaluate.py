"""Does a composition obey its conditions? Generate from held-out faces' inputs and score with the judges.

Each row (``mcdm.eval.rows``) is one request per batch of held-out faces: the faces' inputs as the row's variant
gives them (``mcdm.eval.inputs``), the row's weights, settings overlay and sampling options, sent to
``Composer.generate_tensor``; the samples are scored as ``mcdm.eval.scoring`` says.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from mcdm.data.sample import FaceSample
from mcdm.data.synthfaces import SynthFaces
from mcdm.errors import ConfigError
from mcdm.eval import MIN_FACES
from mcdm.eval.inputs import Targets, face_parts, targets_for
from mcdm.eval.judges import Judges
from mcdm.eval.metrics import diversity, frechet_distance
from mcdm.eval.rows import Row
from mcdm.eval.scoring import ClipScore, min_ratios, score
from mcdm.eval.store import RowStore
from mcdm.methods import Trace
from mcdm.pixels import to_uint8
from mcdm.seeds import check_seed


@dataclass
class RowResult:
    name: str
    modalities: tuple[str, ...]
    n: int
    figures: dict[str, float] = field(default_factory=dict)
    inputs: str = "full"
    seconds: float = 0.0  # generating the row's n samples (not scoring them, not the diversity draws)
    baseline: str = ""  # "shared" or "own" when the row sets every modality's baseline to it
    seconds_per_image: float = 0.0
    calls_per_image: float = 0.0  # network evaluations per image (a batch of B counts B)
    min_ratio: float | None = None  # min over modalities of the row's figure / the modality's alone (min_ratios)
    trace: dict = field(default_factory=dict)  # what a method did (mcdm.methods.Trace): ESS, acceptance


def face_inputs(face: FaceSample, targets: Targets, composer, modalities: Sequence[str]) -> dict[str, object]:
    """The raw inputs a face gives each modality: the face part it declares (``Modality.face_part``) from
    ``targets``, the inputs of the modalities it ``combines`` as one mapping, or else what its own
    ``condition_from_sample`` reads from the face (seeded, so every row agrees)."""
    rng = np.random.default_rng(0)

    def given(name: str):
        modality = composer.plugins.modality(name)
        if modality.combines:
            return {combined: given(combined) for combined in modality.combines}
        if modality.face_part is not None:
            return targets.part(modality.face_part)
        return modality.condition_from_sample(face, rng)

    return {m: given(m) for m in modalities}


def generate_row(composer, row: Row, faces: Sequence[FaceSample], targets: Sequence[Targets], *,
                 steps: int | None, scheduler: str | None, seed: int, batch_size: int,
                 trace: Trace | None = None, progress: bool = False) -> np.ndarray:
    """One sample per face, batch by batch; batch b uses seed ``seed + b`` so every row sees the same noise."""
    images = []
    starts = range(0, len(faces), batch_size)
    for b, start in enumerate(tqdm(starts, desc=row.name, unit="batch", leave=False, disable=not progress)):
        chunk = faces[start : start + batch_size]
        options = {"steps": steps, "scheduler": scheduler, "seed": seed + b, "progress": False, "trace": trace,
                   **row.sampling}
        if row.modalities:
            conditions = [face_inputs(face, target, composer, row.modalities)
                          for face, target in zip(chunk, targets[start : start + batch_size])]
            out = composer.generate_tensor(conditions, weights=dict(row.weights) or None,
                                           settings=dict(row.settings) or None, **options)
        else:
            out = composer.generate_tensor({}, num_images=len(chunk), **options)
        images.append(to_uint8(out))
    return np.concatenate(images)


def row_diversity(composer, row: Row, faces: Sequence[FaceSample], targets: Sequence[Targets], *, samples: int,
                  steps: int | None, scheduler: str | None, seed: int, batch_size: int) -> float:
    """Mean over ``faces`` of the mean pairwise distance among ``samples`` draws for each face's inputs."""
    draws = [generate_row(composer, row, faces, targets, steps=steps, scheduler=scheduler, seed=seed + 1000 * (k + 1),
                          batch_size=batch_size) for k in range(samples)]
    return float(np.mean([diversity(np.stack([d[i] for d in draws])) for i in range(len(faces))]))


def evaluate(composer, judges: Judges, rows: Sequence[Row], *, n: int = 64, steps: int | None = None,
             scheduler: str | None = None, seed: int = 0, batch_size: int = 32, reference: int = 1000,
             diversity_faces: int = 8, diversity_samples: int = 4, clip_score: ClipScore | None = None,
             others: Sequence = (), progress: bool = True, on_row: Callable[[dict], None] | None = None,
             store: RowStore | None = None) -> dict:
    """Every row's figures on ``n`` held-out faces, plus the judges' ceiling on the real faces.

    The Fréchet reference is ``reference`` further test-split faces (after the first ``n``); diversity uses
    ``diversity_samples`` extra draws for each of the first ``diversity_faces`` faces (0 leaves it out).
    A row whose modalities ``composer`` lacks runs on the first of ``others`` that has them all (e.g. the
    joint oracle's composer). ``on_row(results)`` sees the results after each row (a long run's rows so far).
    ``store`` keeps each finished row and, where it reuses, gives back the rows a stopped run finished.
    """
    if n < MIN_FACES or reference < MIN_FACES:
        raise ConfigError(f"n={n}, reference={reference}: the Fréchet distance needs at least {MIN_FACES} faces in each")
    check_seed(seed + 1000 * (diversity_samples + 1) + n, "seed plus the offsets of its batches and diversity draws")
    composers = [composer, *others]
    parts = face_parts(composer.plugins, [m for c in composers for m in c.modalities])
    test_split = SynthFaces(size=composer.image_size, seed=0, split="test", length=n + reference)
    faces = [test_split[i] for i in range(n)]
    real = np.stack([face.image for face in faces])
    reference_features = judges.attributes.features(np.stack([test_split[n + i].image for i in range(reference)]))
    variants = dict.fromkeys(["full", *(row.inputs for row in rows)])  # full: the ceiling's
    targets = {variant: targets_for(faces, variant, seed) for variant in variants}
    ceiling = {**score(real, targets["full"], judges, clip_score), "fd": frechet_distance(judges.attributes.features(real), reference_features)}
    defaults = composer.defaults
    results = {"n": n, "steps": steps or defaults.steps, "scheduler": scheduler or defaults.scheduler,
               "seed": seed, "reference": reference, "diversity_faces": min(diversity_faces, n),
               "diversity_samples": diversity_samples, "ceiling": ceiling, "rows": []}
    samples = {}
    settings = dict(steps=steps, scheduler=scheduler, batch_size=batch_size)
    for row in tqdm(rows, desc="evaluate", disable=not progress):
        done = store.load(row) if store is not None and store.reuse else None
        if done is not None:
            results["rows"].append(done[0])
            samples[row.name] = done[1]
            min_ratios(results, parts)
            if on_row is not None:
                on_row(results)
            continue
        row_targets = targets[row.inputs]
        runner = composer_for(row, composers)
        trace = Trace()
        started = time.perf_counter()
        images = generate_row(runner, row, faces, row_targets, seed=seed, trace=trace, progress=progress, **settings)
        seconds = time.perf_counter() - started
        samples[row.name] = images
        figures = {**score(images, row_targets, judges, clip_score),
                   "fd": frechet_distance(judges.attributes.features(images), reference_features)}
        if diversity_faces and diversity_samples >= 2:
            figures["diversity"] = row_diversity(runner, row, faces[:diversity_faces], row_targets[:diversity_faces],
                                                 samples=diversity_samples, seed=seed, **settings)
        result = asdict(RowResult(row.name, row.modalities, n, figures, row.inputs, seconds, row.baseline_form,
                                  seconds / n, trace.network_images / n, trace=_trace_summary(trace)))
        if store is not None:
            store.save(row, result, images)
        results["rows"].append(result)
        min_ratios(results, parts)
        if on_row is not None:
            on_row(results)
    results["samples"] = samples
    results["real"] = real
    return results


def _trace_summary(trace: Trace) -> dict:
    summary = {}
    if trace.ess:
        summary.update(ess_fraction=float(np.mean(trace.ess)), resamplings=trace.resamplings)
    if trace.acceptance:
        summary["acceptance"] = float(np.mean(trace.acceptance))
    return summary


def composer_for(row: Row, composers: Sequence):
    for candidate in composers:
        if all(m in candidate.modalities for m in row.modalities):
            return candidate
    raise ValueError(f"row {row.name!r}: no composer has all of {', '.join(row.modalities)}")
