"""How well a trained VAE gives back held-out faces (mcdm.eval.reconstruction): PSNR, mean L1, and the judges'
mask IoU and attribute accuracy of real and reconstructed faces, both area-averaged to the judges' size.

    python scripts/vae_reconstruction.py --vae runs/vae/model --n 256 --out reports/vae

writes OUT/reconstruction.json and OUT/reconstruction.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mcdm.atomic import write_text_atomic
from mcdm.eval.judges import Judges
from mcdm.eval.reconstruction import figures_markdown, reconstruction_figures
from mcdm.latent import load_vae
from mcdm.pretrained import resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vae", required=True, help="an AutoencoderKL folder (e.g. a run's model/)")
    parser.add_argument("--n", type=int, default=256, help="held-out test faces")
    parser.add_argument("--size", type=int, default=64, help="the faces' size (the VAE's)")
    parser.add_argument("--judges", default="judges-32", help="the judges, by name or folder")
    parser.add_argument("--out", type=Path, required=True, help="folder for reconstruction.json and .md")
    args = parser.parse_args()

    space = load_vae(args.vae)
    figures = {"vae": str(args.vae), "vae_id": space.id,
               **reconstruction_figures(space.vae, Judges.load(resolve(args.judges)), n=args.n, size=args.size)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "reconstruction.json", json.dumps(figures, indent=2) + "\n")
    markdown = f"# Reconstructions of `{args.vae}` (latent:{space.id})\n\n{figures_markdown(figures)}"
    write_text_atomic(args.out / "reconstruction.md", markdown)
    print(markdown, end="")


if __name__ == "__main__":
    main()
