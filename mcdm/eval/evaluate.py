"""Does a composition obey its conditions? Generate from held-out faces' inputs and score with the judges.

For each row (a set of modalities) every held-out face (the synthfaces *test* split, never trained on) gives
its inputs: its sketch, its label map and its first caption, or partial versions of them (the row's input
variant, ``mcdm.eval.inputs``). One image is generated per face and scored against that face's inputs,
whatever the row gave the model, so a row shows how far each input is obeyed with and without its modality:

- ``mask_iou``: the parsing judge's label map of the sample vs the face's mask, mean IoU over the classes
  present (``mcdm.eval.metrics.mean_iou``);
- ``edge_f1``: Canny edges of the sample vs the face's sketch, F1 with a 2-pixel tolerance;
- ``sketch_gap``: the sample's edge F1 against the face's sketch minus its mean edge F1 against *other* faces'
  sketches (the next ``MISMATCHED_SKETCHES``), all with no tolerance: what the sample owes to this face's sketch
  in particular. At 32x32 any face's outline is within 2 pixels of most of any sketch (the prior alone reaches an
  edge F1 of about 0.82), so edge F1 barely moves when the sketch is left out; the gap does (the prior's is about
  0, the real faces' about 0.76). ``sketch_gap.sd`` is its spread over faces, ``sketch_gap.faces`` the per-face
  values, from which ``modality_drops`` takes the spread of the paired (same face, same noise) drop;
- ``attribute_accuracy``: the attribute judge's reading of the sample vs what the caption states, over the
  captioned attributes the evaluation scores (hair colour, eyeglasses, smiling, hat, beard) that the caption
  mentions. Gender is judged too but not scored: its cues are a fraction of a pixel at 32x32, and the judge
  itself reads it right only 96% of the time.

The same scores of the real held-out faces are the judges' ceiling. Two more figures say whether the
samples look like faces and differ from one another:

- ``clip_score`` (when a CLIP is given, e.g. the one shipped with the composition): 100 x the cosine between
  the CLIP embeddings of the sample and of the caption;
- ``fd``: Fréchet distance between the attribute judge's features of the samples and of ``reference``
  other real held-out faces (the real faces' own distance, at the same N, is the floor);
- ``diversity``: mean pairwise L2 distance (pixels in [0, 1]) among several samples drawn for the same
  face's inputs, averaged over a few faces.

Beside the figures, each row records its network evaluations per image (``calls_per_image``: the images of every
batch any of its models ran, over the row's images) and ``seconds_per_image``, and, where the rows of its
modalities alone are in the same results, ``min_ratio``: each modality's figure (``MODALITY_FIGURE``) divided by
that modality's figure alone, the minimum over its modalities (1: no input lost ground by being composed).
"""

from __future__ import annotations

import itertools
import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from mcdm.combine import Baseline
from mcdm.data.captions import parse_caption
from mcdm.data.sample import FaceSample
from mcdm.data.sketch import sketch_from_image
from mcdm.data.synthfaces import SynthFaces
from mcdm.errors import ConfigError
from mcdm.eval import MIN_FACES
from mcdm.eval.inputs import SCORED_ATTRIBUTES, Targets, targets_for
from mcdm.eval.judges import Judges
from mcdm.eval.metrics import attribute_accuracy, diversity, edge_f1_in_region, frechet_distance, mean_iou
from mcdm.methods import Combiner, Corrector, MethodConfig, Trace
from mcdm.pixels import to_uint8
from mcdm.seeds import check_seed

FIGURES = ("mask_iou", "edge_f1", "attribute_accuracy")
TABLE_FIGURES = ("mask_iou", "edge_f1", "sketch_gap", "attribute_accuracy")
# mismatched sketches the sketch gap's floor averages over: one is a noisy floor (per-face spread 0.082 against
# 0.068 with 8, on 128 faces of the shipped composition)
MISMATCHED_SKETCHES = 8
REALISM = ("fd", "diversity")
ClipScore = Callable[[np.ndarray, list[str]], np.ndarray]  # uint8 images, captions -> a score per image
FIGURE_OF = {"segmentation": "mask_iou", "sketch": "edge_f1", "text": "attribute_accuracy"}
JOINT = "joint"  # the oracle modality (plugins/mcdm-joint): it controls every figure
# the figure min_ratio reads for each modality: the sketch's gap, since edge F1 barely moves without the sketch
MODALITY_FIGURE = {"segmentation": "mask_iou", "sketch": "sketch_gap", "text": "attribute_accuracy"}
SDE_STEPS = 50  # ddpm steps of the methods rows that need the stochastic sampler


@dataclass(frozen=True)
class Row:
    """One line of the table: the modalities given, and how.

    ``weights``: (modality, weight) pairs; ``inputs``: the input variant (``mcdm.eval.inputs``);
    ``settings``: (modality, field, value) changes to the composition's ``ModalityConfig`` for this row
    (e.g. ``("text", "baseline", "own")``, ``("segmentation", "weight_map", False)``); ``sampling``:
    (name, value) keyword arguments of ``Composer.generate_tensor`` (e.g. ``("corrector_steps", 1)``).
    """

    name: str
    modalities: tuple[str, ...]
    weights: tuple[tuple[str, float], ...] = ()
    inputs: str = "full"
    settings: tuple[tuple[str, str, object], ...] = ()
    sampling: tuple[tuple[str, object], ...] = ()


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


def standard_rows(modalities: Sequence[str]) -> list[Row]:
    """The prior alone, each modality alone, every pair, ..., all of them (MCDM: unit weights against the shared
    prior, whatever the composition's defaults), and all of them with each model's own null prediction as its
    baseline."""
    rows = [Row("prior", ())]
    for k in range(1, len(modalities) + 1):
        rows += [Row(" + ".join(combo), tuple(combo), weights=tuple((m, 1.0) for m in combo),
                     settings=tuple((m, "baseline", Baseline.SHARED) for m in combo))
                 for combo in itertools.combinations(modalities, k)]
    if len(modalities) > 1:
        rows.append(Row("all, own baselines", tuple(modalities), weights=tuple((m, 1.0) for m in modalities),
                        settings=tuple((m, "baseline", Baseline.OWN) for m in modalities)))
    if len(modalities) > 2:  # with the pairs above, each modality dropped from the whole in both forms
        for dropped in modalities:
            kept = tuple(m for m in modalities if m != dropped)
            rows.append(Row(f"all but {dropped}, own baselines", kept, weights=tuple((m, 1.0) for m in kept),
                            settings=tuple((m, "baseline", Baseline.OWN) for m in kept)))
    return rows


def negation_rows(modalities: Sequence[str]) -> list[Row]:
    """The caption "The person wears eyeglasses." (``EYEGLASSES_CAPTION``) at weight +1 and -1 (NOT) in both
    forms, beside the prior: the eyeglasses rate is the caption's ``attribute_accuracy.eyeglasses``."""
    if "text" not in modalities:
        raise ConfigError("negation rows need the text modality")
    rows = [Row("prior", (), inputs="eyeglasses")]
    for weight in (1.0, -1.0):
        for baseline in (Baseline.SHARED, Baseline.OWN):
            rows.append(Row(f"text at {weight:+g}, {baseline.value} baseline", ("text",), weights=(("text", weight),),
                            inputs="eyeglasses", settings=(("text", "baseline", baseline),)))
    return rows


def methods_rows(modalities: Sequence[str], sde_steps: int = SDE_STEPS) -> list[Row]:
    """Each modality alone, then all of them by the naive sum and by each method beyond it (docs/method.md).

    The sum at the composition's own sampler, at ``sde_steps`` ddpm steps (diffusers' DDPM step) and on the
    stochastic step that balanced AND and particles K = 2, 4, 8 run on (they need it); MALA (one corrector step)
    at the composition's sampler.
    """
    every = tuple(modalities)
    ddpm = (("scheduler", "ddpm"), ("steps", sde_steps))
    rows = [Row(m, (m,)) for m in modalities]
    # the sum on the methods' own sampler (DDPM's step with the forward process's variance, mcdm.sde.Step):
    # two particles never reweighted, one kept at random, so what the methods change is read against it
    sde_sum = MethodConfig(particles=2, particles_start=0.0, particles_end=0.0)
    rows += [Row("naive sum", every), Row(f"naive sum, ddpm {sde_steps}", every, sampling=ddpm),
             Row(f"naive sum, the methods' ddpm {sde_steps}", every, sampling=(*ddpm, ("method", sde_sum))),
             Row(f"balanced AND, ddpm {sde_steps}", every,
                 sampling=(*ddpm, ("method", MethodConfig(combiner=Combiner.BALANCED)))),
             Row("MALA, 1 corrector step", every,
                 sampling=(("method", MethodConfig(corrector=Corrector.MALA)), ("corrector_steps", 1)))]
    rows += [Row(f"particles K = {k}, ddpm {sde_steps}", every,
                 sampling=(*ddpm, ("method", MethodConfig(particles=k)))) for k in (2, 4, 8)]
    return rows


def min_ratios(results: dict) -> None:
    """Set each row's ``min_ratio`` from the rows of its modalities alone (same inputs, the first such row)."""
    alone = {}
    for row in results["rows"]:
        if len(row["modalities"]) == 1:
            alone.setdefault((row["modalities"][0], row["inputs"]), row["figures"])
    for row in results["rows"]:
        ratios = [row["figures"][MODALITY_FIGURE[m]] / alone[(m, row["inputs"])][MODALITY_FIGURE[m]]
                  for m in row["modalities"]
                  if m in MODALITY_FIGURE and (m, row["inputs"]) in alone
                  and alone[(m, row["inputs"])][MODALITY_FIGURE[m]] > 0]  # no ratio to a figure at or below 0
        row["min_ratio"] = min(ratios) if ratios and len(ratios) == len(row["modalities"]) else None


def modality_drops(results: dict) -> list[dict]:
    """For the rows of all modalities (shared and own baselines), what each figure loses when one modality is
    removed: the whole row's figure minus the figure of the row without it, in the same form."""
    rows = {(frozenset(r["modalities"]), r.get("baseline", "")): r for r in results["rows"]}
    whole = max((r for r in results["rows"] if r.get("baseline")), key=lambda r: len(r["modalities"]), default=None)
    if whole is None or len(whole["modalities"]) < 2:
        return []
    drops = []
    for form in ("shared", "own"):
        full = rows.get((frozenset(whole["modalities"]), form))
        for dropped in whole["modalities"]:
            without = rows.get((frozenset(whole["modalities"]) - {dropped}, form))
            if full is None or without is None:
                continue
            paired = np.subtract(full["figures"]["sketch_gap.faces"], without["figures"]["sketch_gap.faces"])
            drops.append({"form": form, "dropped": dropped, "sketch_gap.sd": full["figures"]["sketch_gap.sd"],
                          "sketch_gap.drop_sd": float(np.std(paired)),
                          **{f: full["figures"][f] - without["figures"][f] for f in DROP_FIGURES
                             if f in full["figures"] and f in without["figures"]}})
    return drops


DROP_FIGURES = ("mask_iou", "edge_f1", "sketch_gap", "attribute_accuracy", "attribute_accuracy.hair_color", "fd")


def drops_table(drops: list[dict]) -> str:
    """``modality_drops`` as Markdown: a figure that cannot fail barely moves when its modality goes."""
    head = ("| form | modality removed | mask IoU | edge F1 | sketch gap | attribute acc. | hair colour | FD |\n"
            "|---|---|---|---|---|---|---|---|\n")
    def cell(d: dict, figure: str) -> str:
        if figure not in d:
            return "–"
        if figure == "fd":
            return f"{d[figure]:+.2f}"
        spread = f" ({d['sketch_gap.drop_sd']:.3f})" if figure == "sketch_gap" and "sketch_gap.drop_sd" in d else ""
        return f"{d[figure]:+.3f}{spread}"

    lines = [f"| {d['form']} baselines | {d['dropped']} | " + " | ".join(cell(d, f) for f in DROP_FIGURES) + " |"
             for d in drops]
    return head + "\n".join(lines) + "\n"


def partial_input_rows(modalities: Sequence[str]) -> list[Row]:
    """For each partial input variant: each modality alone, all together, and all together with each option
    changed: no per-pixel weights, one Langevin corrector step, the sketch silent in the last 20% of steps."""
    rows = []
    everything = tuple(modalities)
    for variant in ("partial", "upper face"):
        rows += [Row(f"{m} ({variant})", (m,), inputs=variant) for m in modalities]
        rows.append(Row(f"all ({variant})", everything, inputs=variant))
        if "segmentation" in modalities:
            rows.append(Row(f"all ({variant}), no weight map", everything, inputs=variant,
                            settings=(("segmentation", "weight_map", False),)))
        rows.append(Row(f"all ({variant}), 1 corrector step", everything, inputs=variant,
                        sampling=(("corrector_steps", 1),)))
        if "sketch" in modalities:
            rows.append(Row(f"all ({variant}), sketch until t = 0.2T", everything, inputs=variant,
                            settings=(("sketch", "start", 0.2),)))
    return rows


def face_inputs(face: FaceSample, targets: Targets, composer, modalities: Sequence[str]) -> dict[str, object]:
    """The raw inputs a face gives each modality: the built-in ones from ``targets``; any other modality reads
    the face through its own ``condition_from_sample`` (seeded, so every row agrees)."""
    rng = np.random.default_rng(0)
    return {m: targets.raw(m) if targets.raw(m) is not None else composer.modalities[m].condition_from_sample(face, rng)
            for m in modalities}


def score(images: np.ndarray, targets: Sequence[Targets], judges: Judges,
          clip_score: ClipScore | None = None) -> dict[str, float]:
    """The figures of uint8 images (N, H, W, 3) against the targets (means over the N images).

    Besides ``attribute_accuracy`` (over every captioned attribute), ``attribute_accuracy.<name>`` is the
    accuracy on one attribute, over the images whose caption states it (absent when none does).
    """
    parsed = judges.parsing.parse(images)
    predicted = judges.attributes.predict(images)
    ious, f1s, gaps = [], [], []
    mismatched = max(1, min(MISMATCHED_SKETCHES, len(targets) - 1))  # one face alone is its own floor
    correct, total = dict.fromkeys(SCORED_ATTRIBUTES, 0), dict.fromkeys(SCORED_ATTRIBUTES, 0)
    for i, (image, target, mask, attributes) in enumerate(zip(images, targets, parsed, predicted)):
        ious.append(mean_iou(mask, target.mask))  # unknown pixels of a partial mask are not scored
        edges = sketch_from_image(image) > 0
        f1s.append(_edge_f1(edges, target, tolerance=2))
        others = [targets[(i + k) % len(targets)] for k in range(1, mismatched + 1)]
        gaps.append(_edge_f1(edges, target, tolerance=0)
                    - float(np.mean([_edge_f1(edges, other, tolerance=0) for other in others])))
        stated = parse_caption(target.caption)
        for name in SCORED_ATTRIBUTES:
            c, t = attribute_accuracy(attributes, stated, names=(name,))
            correct[name], total[name] = correct[name] + c, total[name] + t
    figures = {"mask_iou": float(np.mean(ious)), "edge_f1": float(np.mean(f1s)), "sketch_gap": float(np.mean(gaps)),
               "sketch_gap.sd": float(np.std(gaps)), "sketch_gap.faces": [round(g, 4) for g in gaps],
               "attribute_accuracy": sum(correct.values()) / max(sum(total.values()), 1)}
    figures.update({f"attribute_accuracy.{name}": correct[name] / total[name] for name in SCORED_ATTRIBUTES
                    if total[name]})
    if clip_score is not None:
        figures["clip_score"] = float(np.mean(clip_score(images, [target.caption for target in targets])))
    return figures


def _edge_f1(edges: np.ndarray, target: Targets, tolerance: int) -> float:
    region = np.ones(edges.shape, bool) if target.edge_region is None else target.edge_region
    return edge_f1_in_region(edges, target.edge_reference > 0, region, tolerance=tolerance)


@contextmanager
def changed_settings(composer, changes: Sequence[tuple[str, str, object]]):
    """The composer with ``(modality, ModalityConfig field, value)`` changes in place, restored afterwards."""
    saved = dict(composer.settings)
    try:
        for modality, name, value in changes:
            value = Baseline(value) if name == "baseline" else value  # "own" as written in a YAML file
            composer.settings[modality] = replace(composer.settings[modality], **{name: value})
        yield composer
    finally:
        composer.settings.clear()
        composer.settings.update(saved)


def generate_row(composer, row: Row, faces: Sequence[FaceSample], targets: Sequence[Targets], *,
                 steps: int | None, scheduler: str | None, seed: int, batch_size: int,
                 trace: Trace | None = None) -> np.ndarray:
    """One sample per face, batch by batch; batch b uses seed ``seed + b`` so every row sees the same noise."""
    images = []
    for b, start in enumerate(range(0, len(faces), batch_size)):
        chunk = faces[start : start + batch_size]
        options = {"steps": steps, "scheduler": scheduler, "seed": seed + b, "progress": False, "trace": trace,
                   **dict(row.sampling)}
        if row.modalities:
            conditions = [face_inputs(face, target, composer, row.modalities)
                          for face, target in zip(chunk, targets[start : start + batch_size])]
            with changed_settings(composer, row.settings):
                out = composer.generate_tensor(conditions, weights=dict(row.weights) or None, **options)
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
             others: Sequence = (), progress: bool = True, on_row: Callable[[dict], None] | None = None) -> dict:
    """Every row's figures on ``n`` held-out faces, plus the judges' ceiling on the real faces.

    The Fréchet reference is ``reference`` further test-split faces (after the first ``n``); diversity uses
    ``diversity_samples`` extra draws for each of the first ``diversity_faces`` faces (0 leaves it out).
    A row whose modalities ``composer`` lacks runs on the first of ``others`` that has them all (e.g. the
    joint oracle's composer). ``on_row(results)`` sees the results after each row (a long run's rows so far).
    """
    if n < MIN_FACES or reference < MIN_FACES:
        raise ConfigError(f"n={n}, reference={reference}: the Fréchet distance needs at least {MIN_FACES} faces in each")
    check_seed(seed + 1000 * (diversity_samples + 1) + n, "seed plus the offsets of its batches and diversity draws")
    test_split = SynthFaces(size=composer.sample_size, seed=0, split="test", length=n + reference)
    faces = [test_split[i] for i in range(n)]
    real = np.stack([face.image for face in faces])
    reference_features = judges.attributes.features(np.stack([test_split[n + i].image for i in range(reference)]))
    variants = dict.fromkeys(["full", *(row.inputs for row in rows)])  # full: the ceiling's
    targets = {variant: targets_for(faces, variant, seed) for variant in variants}
    ceiling = {**score(real, targets["full"], judges, clip_score), "fd": frechet_distance(judges.attributes.features(real), reference_features)}
    results = {"n": n, "steps": steps or composer.default_steps, "scheduler": scheduler or composer.scheduler_name,
               "seed": seed, "reference": reference, "diversity_faces": min(diversity_faces, n),
               "diversity_samples": diversity_samples, "ceiling": ceiling, "rows": []}
    samples = {}
    settings = dict(steps=steps, scheduler=scheduler, batch_size=batch_size)
    for row in tqdm(rows, desc="evaluate", disable=not progress):
        row_targets = targets[row.inputs]
        runner = composer_for(row, [composer, *others])
        trace = Trace()
        with counted_calls(runner) as calls:
            started = time.perf_counter()
            images = generate_row(runner, row, faces, row_targets, seed=seed, trace=trace, **settings)
            seconds = time.perf_counter() - started
        samples[row.name] = images
        figures = {**score(images, row_targets, judges, clip_score),
                   "fd": frechet_distance(judges.attributes.features(images), reference_features)}
        if diversity_faces and diversity_samples >= 2:
            figures["diversity"] = row_diversity(runner, row, faces[:diversity_faces], row_targets[:diversity_faces],
                                                 samples=diversity_samples, seed=seed, **settings)
        results["rows"].append(asdict(RowResult(row.name, row.modalities, n, figures, row.inputs, seconds,
                                                _baseline_form(row), seconds / n, calls[0] / n,
                                                trace=_trace_summary(trace))))
        min_ratios(results)
        if on_row is not None:
            on_row(results)
    results["samples"] = samples
    results["real"] = real
    return results


@contextmanager
def counted_calls(composer):
    """A one-element list counting the images every network evaluation of ``composer``'s models takes."""
    count = [0]

    def hook(module, args):
        count[0] += args[0].shape[0]

    handles = [model.denoiser.register_forward_pre_hook(hook) for model in (composer.prior, *composer.models.values())]
    try:
        yield count
    finally:
        for handle in handles:
            handle.remove()


def _trace_summary(trace: Trace) -> dict:
    summary = {}
    if trace.ess:
        summary.update(ess_fraction=float(np.mean(trace.ess)), resamplings=trace.resamplings)
    if trace.acceptance:
        summary["acceptance"] = float(np.mean(trace.acceptance))
    return summary


def _baseline_form(row: Row) -> str:
    forms = {Baseline(value).value for _, name, value in row.settings if name == "baseline"}
    return forms.pop() if len(forms) == 1 and len(row.settings) >= len(row.modalities) else ""


def composer_for(row: Row, composers: Sequence):
    for candidate in composers:
        if all(m in candidate.models for m in row.modalities):
            return candidate
    raise ValueError(f"row {row.name!r}: no composer has all of {', '.join(row.modalities)}")


def markdown_table(results: dict) -> str:
    """The rows as a Markdown table; the figure a row's own modalities control is in bold."""
    clip = "clip_score" in results["ceiling"]
    head = ("| row | mask IoU ↑ | edge F1 ↑ | sketch gap ↑ | attribute acc. ↑ |" + (" CLIP score ↑ |" if clip else "")
            + " FD ↓ | diversity |\n|---|---|---|---|---|" + ("---|" if clip else "") + "---|---|\n")
    lines = []
    for row in [{"name": "real held-out faces (judges' ceiling)", "modalities": (), "figures": results["ceiling"]},
                *results["rows"]]:
        own = set(FIGURES) if JOINT in row["modalities"] else {FIGURE_OF[m] for m in row["modalities"] if m in FIGURE_OF}
        own |= {"sketch_gap"} if "edge_f1" in own else set()
        cells = [f"**{row['figures'][f]:.3f}**" if f in own else f"{row['figures'][f]:.3f}" for f in TABLE_FIGURES]
        cells += [f"{row['figures'][f]:.2f}" if f in row["figures"] else "–"
                  for f in (("clip_score",) if clip else ()) + REALISM]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    note = (f"\n\n{results['n']} held-out faces per row, {results['steps']} {results['scheduler']} steps, seed "
            f"{results['seed']}. FD: attribute-judge features against {results['reference']} other held-out faces. ")
    if any(row.get("inputs", "full") != "full" for row in results["rows"]):
        note += "The ceiling row scores the real faces against their full inputs. "
    if results.get("diversity_samples", 0) >= 2:
        note += (f"Diversity: {results['diversity_samples']} samples for each of the first "
                 f"{results['diversity_faces']} faces' inputs.")
    drops = modality_drops(results)
    if drops:
        note += ("\n\nWhat each figure of the rows of all modalities loses when one modality is removed (the whole "
                 "row minus the row without it; the sketch gap's spread over faces in the whole row: "
                 + ", ".join(f"{sd:.3f} ({form})" for form, sd in {d["form"]: d["sketch_gap.sd"] for d in drops}.items())
                 + "; the spread over faces of its paired drop, same face and noise, in brackets):\n\n"
                 + drops_table(drops))
    return head + "\n".join(lines) + note.rstrip() + "\n"


def methods_table(results: dict) -> str:
    """The methods rows (``methods_rows``) with each attribute's accuracy, the min-over-modalities ratio, network
    evaluations and seconds per image, and what the method did (mean ESS fraction, MALA's acceptance)."""
    attributes = [a for a in SCORED_ATTRIBUTES if any(f"attribute_accuracy.{a}" in row["figures"]
                                                      for row in results["rows"])]
    head = ("| row | mask IoU | edge F1 | sketch gap | attribute acc. | "
            + " | ".join(a.replace("_", " ") for a in attributes)
            + " | min ratio | FD | calls / image | s / image | ESS / K, acceptance |\n"
            + "|---" * (10 + len(attributes)) + "|\n")
    lines = []
    for row in results["rows"]:
        f = row["figures"]
        cells = [f"{f[name]:.3f}" for name in TABLE_FIGURES]
        cells += [f"{f[f'attribute_accuracy.{a}']:.3f}" if f"attribute_accuracy.{a}" in f else "–" for a in attributes]
        cells.append("–" if row.get("min_ratio") is None else f"{row['min_ratio']:.3f}")
        cells += [f"{f['fd']:.2f}", f"{row['calls_per_image']:.0f}", f"{row['seconds_per_image']:.2f}"]
        trace = row.get("trace", {})
        did = []
        if "ess_fraction" in trace:
            did.append(f"ESS {trace['ess_fraction']:.3f}")
        if "acceptance" in trace:
            did.append(f"accept {trace['acceptance']:.3f}")
        cells.append(", ".join(did) or "–")
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    note = (f"\n\n{results['n']} held-out faces per row, seed {results['seed']}; rows without a sampler in their name: "
            f"{results['steps']} {results['scheduler']} steps. min ratio: each modality's figure (mask IoU, sketch "
            "gap, attribute accuracy) over the same figure of that modality alone, the minimum over the row's "
            f"modalities. FD against {results['reference']} other held-out faces.")
    return head + "\n".join(lines) + note + "\n"


def write_tables(results: dict, out: Path, table=markdown_table) -> None:
    """results.json (the results without their images) and results.md (``table(results)``)."""
    out.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in results.items() if k not in ("samples", "real")}
    (out / "results.json").write_text(json.dumps(public, indent=2) + "\n")
    (out / "results.md").write_text(table(results))


def write_results(results: dict, out: Path, examples: int = 8, table=markdown_table) -> None:
    """results.json, results.md (``table(results)``), samples.png (one line per row, its name at the left: its first
    ``examples`` samples, at twice their size),
    composed_vs_real.png (up to 64 samples of the row with the most modalities beside as many real faces)
    and figures.png (the constraint figures of every row as bars)."""
    from mcdm.imageio import labelled_rows, save_png_atomic

    write_tables(results, out, table)
    columns = min(examples, min(len(images) for images in results["samples"].values()))
    save_png_atomic(labelled_rows({name: images[:columns] for name, images in results["samples"].items()}),
                    out / "samples.png")
    bar_chart(results, out / "figures.png")
    widest = max(results["rows"], key=lambda row: len(row["modalities"]))
    save_png_atomic(side_by_side(results["samples"][widest["name"]][:64], results["real"][:64],
                                 labels=(widest["name"], "real held-out faces")), out / "composed_vs_real.png")


def side_by_side(left: np.ndarray, right: np.ndarray, labels: tuple[str, str], scale: int = 2):
    """Two square grids of uint8 images (N, H, W, 3), each under its label, on one white sheet."""
    from PIL import Image, ImageDraw, ImageFont

    from mcdm.imageio import grid

    columns = int(np.ceil(np.sqrt(len(left))))
    sheets = [grid([Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
                    for image in images], columns=columns) for images in (left, right)]
    header, gap = 20, 16
    width = sum(sheet.width for sheet in sheets) + gap
    canvas = Image.new("RGB", (width, header + max(sheet.height for sheet in sheets)), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for sheet, label in zip(sheets, labels):
        draw.text((x + 4, 4), label, fill="black", font=ImageFont.load_default(size=12))
        canvas.paste(sheet, (x, header))
        x += sheet.width + gap
    return canvas


def bar_chart(results: dict, path: Path) -> None:
    """One group of bars per figure (mask IoU, edge F1, attribute accuracy), one bar per row, the ceiling dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    fig, ax = plt.subplots(figsize=(min(11.0, 4 + 0.25 * len(rows) * len(FIGURES)), 3.6), dpi=120)
    width = 0.8 / len(rows)
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(rows), 2)))
    for i, row in enumerate(rows):
        xs = np.arange(len(FIGURES)) + (i - (len(rows) - 1) / 2) * width
        ax.bar(xs, [row["figures"][f] for f in FIGURES], width, label=row["name"], color=colours[i])
    for j, figure in enumerate(FIGURES):
        ax.hlines(results["ceiling"][figure], j - 0.4, j + 0.4, colors="black", linestyles="dashed", linewidth=1)
    ax.set_xticks(np.arange(len(FIGURES)), ["mask IoU", "edge F1", "attribute accuracy"])
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{results['n']} held-out faces per row; dashed: real faces (the judges' ceiling)", fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
