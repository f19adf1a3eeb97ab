"""Compose two models trained on different datasets, with three ways of handling their priors.

The segmentation model saw only the ``dark-hair`` variant (dark hair, no eyeglasses, pale backgrounds); the
text model and the shared prior are the shipped ones, trained on the default synthfaces (every hair colour,
eyeglasses, any background). Held-out default faces give each a mask and a caption, so the segmentation model
meets layouts it never saw (eyeglasses) and the caption asks for hair colours it never drew. The combiners are:

- shared prior: eps = eps_u + sum_i (eps_i - eps_u), eps_u the shared prior (MCDM);
- own baseline: each difference against its own model's null prediction, eps_i - eps_i(null);
- mixture of priors: eps_u = sum_j pi_j eps_j(null) over the two models' own null predictions
  (``--mixture`` sets pi for segmentation; text gets the rest): the score of the geometric mixture
  prod_j p_j^pi_j, which favours images both priors find likely;
- OR of the priors (``method.prior_mixing: or``): the score of the mixture sum_j pi_j p_j itself, each
  sample's weights the posterior softmax(log p_j + log pi_j) from log-densities tracked along the trajectory
  (docs/method.md); it needs the ddpm sampler, so it runs beside the geometric mixture on the same
  ``--ddpm-steps`` ddpm steps.

Each row is scored as ``mcdm eval`` scores (``mcdm.eval.evaluate``): mask IoU for the layout, attribute
accuracy for the caption, FD and diversity for realism; ``comparison.png`` shows 8 faces, their masks and
every row's samples. Run (the segmentation model from
configs/train/mixing/segmentation-dark-hair.yaml)::

    python examples/dataset_mixing.py --segmentation RUNS/mix-seg-dark/model --n 64 --out mixing-results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mcdm.checkpoint import load_model
from mcdm.combine import Baseline
from mcdm.compose import Composer
from mcdm.config import ModalityConfig
from mcdm.data import SynthFaces
from mcdm.data.labels import colorize_mask
from mcdm.eval.evaluate import evaluate
from mcdm.eval.inputs import face_parts
from mcdm.eval.pictures import write_pictures
from mcdm.eval.rows import Row
from mcdm.eval.tables import markdown_table, write_tables
from mcdm.eval.judges import Judges
from mcdm.imageio import labelled_rows, save_png_atomic
from mcdm.methods import MethodConfig, PriorMixing
from mcdm.plugins import make_plugin_manager
from mcdm.pretrained import resolve

MODALITIES = ("segmentation", "text")


def combiners(mixture: float, ddpm_steps: int) -> dict[str, dict]:
    own = {m: ModalityConfig(path="", baseline=Baseline.OWN) for m in MODALITIES}
    priors = {"prior_mixture": {"segmentation": mixture, "text": 1.0 - mixture}}
    ddpm = {"scheduler": "ddpm", "steps": ddpm_steps}
    return {
        "shared prior": {},
        "own baseline": {"settings": own},
        "mixture of priors": priors,
        f"mixture of priors, ddpm {ddpm_steps}": {**priors, **ddpm},
        f"OR of the priors, ddpm {ddpm_steps}": {**priors, **ddpm, "method": MethodConfig(prior_mixing=PriorMixing.OR)},
    }


def run(segmentation: Path, text: Path, prior: Path, judges: Path, *, n: int, mixture: float, steps: int | None,
        out: Path, reference: int = 1000, ddpm_steps: int = 50) -> dict:
    plugins = make_plugin_manager()
    models = {"segmentation": load_model(segmentation, plugins, name="segmentation (dark-hair)"),
              "text": load_model(text, plugins, name="text (default)")}
    prior_model = load_model(prior, plugins, name="prior (default)")
    judge = Judges.load(judges)
    parts = face_parts(plugins, MODALITIES)
    singles = [Row(f"{m} alone", (m,)) for m in MODALITIES]
    tables = {}
    for name, options in combiners(mixture, ddpm_steps).items():
        composer = Composer(prior_model, models, plugins=plugins, **options)
        rows = [Row(f"segmentation + text, {name}", MODALITIES)]
        if name == "shared prior":
            rows = singles + rows  # a single model is the same under every combiner but its own baseline
        results = evaluate(composer, judge, rows, n=n, steps=None if "scheduler" in options else steps,
                           reference=reference, progress=False)
        folder = out / name.replace(", ", "-").replace(" ", "-")
        write_tables(results, folder, markdown_table(results, parts))
        write_pictures(results, folder)
        tables[name] = results
    merged = {**tables["shared prior"], "rows": [r for t in tables.values() for r in t["rows"]]}
    merged.pop("samples"), merged.pop("real")
    (out / "results.json").write_text(json.dumps({"mixture": mixture, **merged}, indent=2) + "\n")
    (out / "results.md").write_text(markdown_table(merged, parts))
    save_png_atomic(comparison(tables), out / "comparison.png")
    return merged


def comparison(tables: dict[str, dict], faces: int = 8):
    """One column per held-out face; lines: the face, its mask, then every row's sample for it."""
    real = tables["shared prior"]["real"][:faces]
    test_split = SynthFaces(size=real.shape[1], seed=0, split="test", length=len(real))
    faces = [test_split[i] for i in range(len(real))]
    if not all(np.array_equal(face.image, image) for face, image in zip(faces, real)):
        raise RuntimeError("the masks drawn are not those of the faces evaluate scored")  # evaluate chose other faces
    masks = [colorize_mask(face.mask) for face in faces]
    samples = {name: images[: len(real)] for table in tables.values() for name, images in table["samples"].items()}
    return labelled_rows({"held-out face": real, "its mask": masks, **samples})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segmentation", type=Path, required=True, help="segmentation model trained on dark-hair")
    parser.add_argument("--text", type=Path, help="text model (default: the shipped synthfaces-32 one)")
    parser.add_argument("--prior", type=Path, help="shared prior (default: the shipped synthfaces-32 one)")
    parser.add_argument("--judges", default="judges-32")
    parser.add_argument("--mixture", type=float, default=0.5, help="weight of the segmentation model's prior")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--ddpm-steps", type=int, default=50, help="steps of the two ddpm rows (the OR needs ddpm)")
    parser.add_argument("--reference", type=int, default=1000, help="real faces the Fréchet distance compares with")
    parser.add_argument("--out", type=Path, default=Path("mixing-results"))
    args = parser.parse_args()
    shipped = resolve("synthfaces-32")
    run(args.segmentation, args.text or shipped / "text", args.prior or shipped / "prior",
                 resolve(args.judges), n=args.n, mixture=args.mixture, steps=args.steps, out=args.out,
                 reference=args.reference, ddpm_steps=args.ddpm_steps)
    print((args.out / "results.md").read_text())
    print(f"wrote {args.out / 'results.md'}")


if __name__ == "__main__":
    main()
