"""The evaluation's results as Markdown tables, and results.json / results.md written from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from mcdm.atomic import write_text_atomic
from mcdm.eval.inputs import SCORED_ATTRIBUTES
from mcdm.eval.scoring import DROP_FIGURES, REALISM, controlled_figures, modality_drops

TABLE_FIGURES = ("mask_iou", "edge_f1", "sketch_gap", "attribute_accuracy")


def markdown_table(results: dict, parts: Mapping[str, tuple[str, ...]]) -> str:
    """The rows as a Markdown table; the figure a row's own modalities control (the figure of their face
    ``parts``, ``mcdm.eval.inputs.face_parts``) is in bold."""
    clip = "clip_score" in results["ceiling"]
    head = ("| row | mask IoU ↑ | edge F1 ↑ | sketch gap ↑ | attribute acc. ↑ |" + (" CLIP score ↑ |" if clip else "")
            + " FD ↓ | diversity |\n|---|---|---|---|---|" + ("---|" if clip else "") + "---|---|\n")
    lines = []
    for row in [{"name": "real held-out faces (judges' ceiling)", "modalities": (), "figures": results["ceiling"]},
                *results["rows"]]:
        own = controlled_figures(row["modalities"], parts)
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


def write_tables(results: dict, out: Path, table: str) -> None:
    """results.json (the results without their images) and results.md (``table``, e.g. ``markdown_table``'s),
    each replaced whole: they are rewritten after every row, and a run stopped mid-write keeps the last ones."""
    out.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in results.items() if k not in ("samples", "real")}
    write_text_atomic(out / "results.json", json.dumps(public, indent=2) + "\n")
    write_text_atomic(out / "results.md", table)
