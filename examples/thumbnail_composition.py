"""Compose a fourth modality, added from outside, with the shipped sketch, segmentation and text models.

The thumbnail plugin (``examples/plugins/mcdm-thumbnail``, installed on its own) brings one model trained with
``mcdm train``; nothing shipped is retrained or changed: the shipped composition's settings (own baselines,
its sampler) are read as they are and the thumbnail joins with its own baseline too. Held-out faces give every
modality its input (the thumbnail: the face itself, reduced to 8x8 colour cells), and the rows are scored as
``mcdm eval`` scores them (``mcdm.eval.evaluate``), plus the thumbnail's own figure:

- ``layout_error``: mean absolute difference (pixels in [0, 1]) between the 8x8 colour cells of the sample and
  those of the face its thumbnail came from; the prior's row is what an unconstrained face scores.

Run (the thumbnail model from ``mcdm train denoiser examples/plugins/mcdm-thumbnail/configs/thumbnail.yaml``)::

    python examples/thumbnail_composition.py --thumbnail RUNS/thumbnail/model --n 64 --out thumbnail-results
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from mcdm.combine import Baseline
from mcdm.compose import Composer
from mcdm.config import CompositionConfig, ModalityConfig, load_config
from mcdm.eval.evaluate import evaluate
from mcdm.eval.pictures import write_pictures
from mcdm.eval.rows import Row
from mcdm.eval.tables import write_tables
from mcdm.eval.judges import Judges
from mcdm.imageio import labelled_rows, save_png_atomic
from mcdm.pretrained import COMPOSITION_FILE, resolve
from mcdm_thumbnail.modality import GRID, ThumbnailModality, area_average

THUMBNAIL = "thumbnail"
SHIPPED = ("sketch", "segmentation", "text")
COLUMNS = (("layout_error", "layout error ↓", 3), ("mask_iou", "mask IoU ↑", 3), ("edge_f1", "edge F1 ↑", 3),
           ("attribute_accuracy", "attribute acc. ↑", 3), ("fd", "FD ↓", 2))


def layout_error(samples: np.ndarray, faces: np.ndarray) -> float:
    """Mean |cells(sample) - cells(face)| over GRID x GRID colour cells, uint8 images (N, H, W, 3) in, [0, 1] out."""
    cells = [np.stack([area_average(image / 255.0, GRID) for image in images]) for images in (samples, faces)]
    return float(np.abs(cells[0] - cells[1]).mean())


def rows() -> list[Row]:
    return [Row("prior", ()), Row(THUMBNAIL, (THUMBNAIL,)), Row(" + ".join(SHIPPED), SHIPPED),
            Row(" + ".join(SHIPPED + (THUMBNAIL,)), SHIPPED + (THUMBNAIL,))]


def composer_with_thumbnail(composition: Path, thumbnail: Path) -> Composer:
    """The shipped composition as configured, plus the thumbnail model (own baseline, like the others)."""
    config = load_config(CompositionConfig, composition / COMPOSITION_FILE)
    own = ModalityConfig(path=str(thumbnail.resolve()), baseline=Baseline.OWN)
    return Composer.from_config(replace(config, modalities={**config.modalities, THUMBNAIL: own}), root=composition)


def thumbnails(faces: np.ndarray) -> np.ndarray:
    """Each face's 8x8 colour cells shown at the face's size (what the thumbnail modality is given)."""
    modality = ThumbnailModality()
    colours = [modality.prepare(face, size=face.shape[0])[:3].permute(1, 2, 0).numpy() for face in faces]
    return np.stack([((c + 1) * 127.5).round().astype(np.uint8) for c in colours])


def comparison(results: dict, faces: int = 8):
    """One column per held-out face; lines: the face, its thumbnail, then each row's sample for it."""
    faces = min(faces, len(results["real"]))
    return labelled_rows({"held-out face": results["real"][:faces], "its thumbnail": thumbnails(results["real"][:faces]),
                          **{row["name"]: results["samples"][row["name"]][:faces] for row in results["rows"]}})


def table(results: dict) -> str:
    lines = ["| row | " + " | ".join(label for _, label, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for row in [{"name": "real held-out faces", "figures": {"layout_error": 0.0, **results["ceiling"]}},
                *results["rows"]]:
        cells = [f"{row['figures'][key]:.{digits}f}" for key, _, digits in COLUMNS]
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + (f"\n\n{results['n']} held-out faces per row, {results['steps']} {results['scheduler']} "
                               f"steps, seed {results['seed']}.\n")


def run(composition: Path, thumbnail: Path, judges: Path, *, n: int, steps: int | None, out: Path,
        reference: int = 1000) -> dict:
    composer = composer_with_thumbnail(composition, thumbnail)
    results = evaluate(composer, Judges.load(judges), rows(), n=n, steps=steps, reference=reference,
                       diversity_samples=0, progress=False)
    for row in results["rows"]:
        row["figures"]["layout_error"] = layout_error(results["samples"][row["name"]], results["real"])
    write_tables(results, out, table(results))  # results.json carries layout_error too
    write_pictures(results, out)
    save_png_atomic(comparison(results), out / "comparison.png")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thumbnail", type=Path, required=True, help="the trained thumbnail model folder")
    parser.add_argument("--model", default="synthfaces-32", help="the composition it joins (name or folder)")
    parser.add_argument("--judges", default="judges-32")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--reference", type=int, default=1000, help="real faces the Fréchet distance compares with")
    parser.add_argument("--out", type=Path, default=Path("thumbnail-results"))
    args = parser.parse_args()
    results = run(resolve(args.model), args.thumbnail, resolve(args.judges), n=args.n, steps=args.steps,
                  out=args.out, reference=args.reference)
    print(table(results))
    print(f"wrote {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
