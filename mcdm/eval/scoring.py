"""What the evaluation figures are, and how a row's generated faces get them.

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

Faces are drawn at the composition's image size (a latent composition's decoded size). Judges trained at a
smaller size read them averaged down to it (a 64x64 face as its 2x2 means; ``mcdm.eval.judges.area_downsample``)
and give label maps back at the face's size; edges and sketches are compared at the face's size.

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
modalities alone are in the same results, ``min_ratio``: each modality's figure (``RATIO_FIGURE`` of its face
part) divided by that modality's figure alone, the minimum over its modalities (1: no input lost ground by being
composed).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from mcdm.data.captions import parse_caption
from mcdm.data.sketch import sketch_from_image
from mcdm.eval.inputs import SCORED_ATTRIBUTES, Targets
from mcdm.eval.judges import Judges
from mcdm.eval.metrics import attribute_accuracy, edge_f1_in_region, mean_iou

FIGURES = ("mask_iou", "edge_f1", "attribute_accuracy")
# mismatched sketches the sketch gap's floor averages over: one is a noisy floor (per-face spread 0.082 against
# 0.068 with 8, on 128 faces of the shipped composition)
MISMATCHED_SKETCHES = 8
REALISM = ("fd", "diversity")
ClipScore = Callable[[np.ndarray, list[str]], np.ndarray]  # uint8 images, captions -> a score per image
PART_FIGURE = {"mask": "mask_iou", "sketch": "edge_f1", "caption": "attribute_accuracy"}
"""The figure that scores each face part (``Modality.face_part``): the one a modality of that part controls."""
RATIO_FIGURE = {**PART_FIGURE, "sketch": "sketch_gap"}
"""The figure ``min_ratio`` reads for each face part: the sketch's gap, since edge F1 barely moves without it."""


def controlled_figures(modalities: Sequence[str], parts: Mapping[str, tuple[str, ...]]) -> set[str]:
    """The figures a row's modalities control (their face parts' figures; the sketch gap with edge F1)."""
    own = {PART_FIGURE[part] for m in modalities for part in parts.get(m, ())}
    return own | ({"sketch_gap"} if "edge_f1" in own else set())


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


def min_ratios(results: dict, parts: Mapping[str, tuple[str, ...]]) -> None:
    """Set each row's ``min_ratio`` from the rows of its modalities alone (same inputs, the first such row); a
    modality of one face part (``parts``) is read on that part's ``RATIO_FIGURE``, any other has no ratio."""
    figure = {m: RATIO_FIGURE[p[0]] for m, p in parts.items() if len(p) == 1}
    alone = {}
    for row in results["rows"]:
        if len(row["modalities"]) == 1:
            alone.setdefault((row["modalities"][0], row["inputs"]), row["figures"])
    for row in results["rows"]:
        ratios = [row["figures"][figure[m]] / alone[(m, row["inputs"])][figure[m]]
                  for m in row["modalities"]
                  if m in figure and (m, row["inputs"]) in alone
                  and alone[(m, row["inputs"])][figure[m]] > 0]  # no ratio to a figure at or below 0
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
