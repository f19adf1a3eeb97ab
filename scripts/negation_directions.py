"""What NOT subtracts, step by step: along the trajectory of a caption at weight -1, the sizes of the caption's own
direction and of the model gap, in x_0 space (docs/method.md, "NOT: which baseline").

Against the shared prior, NOT moves x_0 by -(x0_c - x0_u) = -(x0_c - x0_null) - (x0_null - x0_u): the caption's
direction plus the gap between the text model's null prediction and the prior's, two independently trained
networks. Against its own baseline it moves by the first alone.

    python scripts/negation_directions.py --n 16 --out negation-directions.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mcdm.compose import Composer
from mcdm.eval.inputs import EYEGLASSES_CAPTION
from mcdm.sampling import sample
from mcdm.schedule import make_scheduler


def rms(a: torch.Tensor) -> float:
    return float(a.pow(2).mean().sqrt())


class Recording:
    """The composed predictor, unchanged, with the sizes of the term's directions recorded at every call."""

    def __init__(self, composer: Composer, predictor):
        self.composer, self.predictor = composer, predictor
        self.term = predictor.terms[0]
        self.steps: list[dict] = []

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = self.predictor(x_t, t)
        prior, term = self.composer.prior, self.term
        with torch.no_grad():
            u, c, null = prior(x_t, t, None), term.model(x_t, t, term.condition), term.model(x_t, t, term.null_condition)
        abar = prior._abar(t, x_t)

        def x0(e: torch.Tensor) -> torch.Tensor:
            return (x_t - (1 - abar).sqrt() * e) / abar.sqrt()

        self.steps.append({"t": int(t), "x0_caption": rms(x0(c) - x0(null)), "x0_gap": rms(x0(null) - x0(u)),
                           "x0_out_of_range": float((x0(eps).abs() > 1).float().mean()),
                           "prior_x0_out_of_range": float((x0(u).abs() > 1).float().mean())})
        return eps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="synthfaces-32")
    parser.add_argument("--caption", default=EYEGLASSES_CAPTION)
    parser.add_argument("--weight", type=float, default=-1.0)
    parser.add_argument("--n", type=int, default=16, help="images (one batch)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("negation-directions.json"))
    args = parser.parse_args()

    composer = Composer.from_pretrained(args.model)
    results = {"caption": args.caption, "weight": args.weight, "n": args.n, "steps": args.steps, "seed": args.seed}
    for baseline in ("shared", "own"):
        predictor = composer.predictor({"text": args.caption}, num_images=args.n,
                                       settings={"text": {"weight": args.weight, "baseline": baseline}})
        recording = Recording(composer, predictor)
        x = sample(recording, make_scheduler("dpm++", composer.schedule_config),
                   shape=(args.n, composer.channels, composer.sample_size, composer.sample_size), steps=args.steps,
                   generator=torch.Generator().manual_seed(args.seed), progress=False)
        results[baseline] = {"steps": recording.steps, "image_out_of_range": float((x.abs() > 1).float().mean())}
    args.out.write_text(json.dumps(results, indent=1) + "\n")

    print("| t | caption direction (x0 rms) | model gap (x0 rms) | gap / caption | x0 outside [-1, 1]: shared | own | prior |")
    print("|---|---|---|---|---|---|---|")
    for shared, own in list(zip(results["shared"]["steps"], results["own"]["steps"]))[::4]:
        print(f"| {shared['t']} | {shared['x0_caption']:.3f} | {shared['x0_gap']:.3f} | "
              f"{shared['x0_gap'] / shared['x0_caption']:.1f} | {shared['x0_out_of_range']:.1%} | "
              f"{own['x0_out_of_range']:.1%} | {shared['prior_x0_out_of_range']:.1%} |")
    print(f"final images outside [-1, 1]: shared {results['shared']['image_out_of_range']:.1%}, "
          f"own {results['own']['image_out_of_range']:.1%}")


if __name__ == "__main__":
    main()
