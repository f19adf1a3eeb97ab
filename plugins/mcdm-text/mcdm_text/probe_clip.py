"""Does a CLIP's text tower encode each captioned attribute? Zero-shot accuracy on held-out synthfaces.

    python -m mcdm_text.probe_clip --clip pretrained/synthfaces-32/clip --n 256

For each attribute, every held-out face's image is scored against captions stating each value ("The person
wears eyeglasses." / "The person does not wear eyeglasses."); the best-scoring value is the CLIP's reading.
A text model conditioned on the CLIP's tower cannot learn an attribute the tower does not separate, so check
this before training one. It also prints, per attribute, how alike the tower finds the captions of two values:
the cosine of their CLIP text embeddings (for hair colour, the most alike pair), near 1 where the tower's
summary says the same for "is smiling" and "is not smiling".
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mcdm.data.attributes import HAIR_COLORS
from mcdm.data.captions import describable
from mcdm_text.clip import ClipScorer

PROMPTS = {
    "eyeglasses": {True: "The person wears eyeglasses.", False: "The person does not wear eyeglasses."},
    "hat": {True: "The person wears a hat.", False: "The person does not wear a hat."},
    "smiling": {True: "The person is smiling.", False: "The person is not smiling."},
    "beard": {True: "The man has a beard.", False: "The man has no beard."},
    "hair_color": {c: f"The person has {c} hair." for c in HAIR_COLORS},
}


def probe(scorer: ClipScorer, faces) -> dict[str, dict[str, float]]:
    """{attribute: {"accuracy", "majority", "n"}}: the CLIP's zero-shot accuracy, and that of always answering
    the most common value (the floor an attribute must beat), over the faces the attribute applies to."""
    results = {}
    for name, prompts in PROMPTS.items():
        applies = [f for f in faces if name in describable(f.attributes)]  # no beard on women, no colour if bald
        images = np.stack([f.image for f in applies])
        values = list(prompts)
        scores = np.stack([scorer(images, [prompts[v]] * len(applies)) for v in values])
        guess = [values[i] for i in scores.argmax(axis=0)]
        truth = [getattr(f.attributes, name) for f in applies]
        majority = max(truth.count(v) for v in set(truth)) / len(truth)
        results[name] = {"accuracy": float(np.mean([g == t for g, t in zip(guess, truth)])), "majority": majority,
                         "n": len(applies)}
    return results


def prompt_similarity(scorer: ClipScorer) -> dict[str, float]:
    """{attribute: the highest cosine between the text embeddings of two of its captions}."""
    similarity = {}
    for name, prompts in PROMPTS.items():
        embeddings = scorer.caption_embeddings(list(prompts.values()))
        cosines = embeddings @ embeddings.T
        similarity[name] = float(cosines[~torch.eye(len(prompts), dtype=torch.bool)].max())
    return similarity


def main() -> None:
    from mcdm.data import SynthFaces

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True, help="a CLIP folder (clip_config.json + model.safetensors)")
    parser.add_argument("--n", type=int, default=256, help="held-out faces")
    args = parser.parse_args()
    split = SynthFaces(size=32, seed=0, split="test", length=args.n)
    scorer = ClipScorer.load(args.clip)
    similarity = prompt_similarity(scorer)
    for name, r in probe(scorer, [split[i] for i in range(args.n)]).items():
        print(f"{name:11s} zero-shot {r['accuracy']:.3f}  (always the commonest value: {r['majority']:.3f}; "
              f"{r['n']} faces); its captions' embeddings: cosine {similarity[name]:.3f}")


if __name__ == "__main__":
    main()
