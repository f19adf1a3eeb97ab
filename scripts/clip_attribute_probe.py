"""Which attributes a small CLIP tells apart on held-out faces, two ways:

    python scripts/clip_attribute_probe.py --clip RUN/clip --size 64 [--n 256]

- caption test: for each face (synthfaces test split) and attribute, the caption stating only that attribute is
  scored against the same caption with the attribute's value changed; the share of faces whose own caption wins;
  beside it the text-embedding cosine of one such pair (1.000: the text tower does not tell them apart);
- linear probe: a logistic regression on the image features of the first 2,000 test faces, scored on the next
  1,000 (chance: the commoner value's share); says whether the image tower sees the attribute at all.
A training checkpoint folder (model.safetensors) is read with its run's architecture (RUN/config.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from mcdm.data.attributes import GENDERS, HAIR_COLORS
from mcdm.data.captions import describable, partial_caption
from mcdm.data.synthfaces import SynthFaces
from mcdm_text.clip import ClipScorer, clip_config, images_to_tensor

ATTRIBUTES = ("smiling", "beard", "eyeglasses", "hat", "hair_color", "gender")


def changed(value, name: str, rng: np.random.Generator):
    """Another value of attribute ``name``."""
    values = {"hair_color": HAIR_COLORS, "gender": GENDERS}.get(name, (False, True))
    others = [v for v in values if v != value]
    return others[int(rng.integers(len(others)))]


def caption_test(scorer: ClipScorer, faces: SynthFaces, name: str, rng: np.random.Generator) -> tuple[float, int, str]:
    images, own, wrong = [], [], []
    for face in faces:
        a = face.attributes
        if name not in describable(a):
            continue
        images.append(face.image)
        own.append(partial_caption(a, rng, 1, among=(name,)))
        wrong.append(partial_caption(dataclasses.replace(a, **{name: changed(getattr(a, name), name, rng)}), rng, 1,
                                     among=(name,)))
    wins = scorer(np.stack(images), own) > scorer(np.stack(images), wrong)
    pair = scorer.caption_embeddings([own[0], wrong[0]])
    return float(wins.mean()), len(images), f"cos({own[0]!r}, {wrong[0]!r}) = {float(pair[0] @ pair[1]):.3f}"


def linear_probe(features: torch.Tensor, labels: torch.Tensor, train: int = 2000) -> tuple[float, float]:
    w = torch.zeros(features.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=200)

    def closure():
        optimizer.zero_grad()
        logits = 10 * features[:train] @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[:train]) + 1e-4 * w.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    test = labels[train:]
    accuracy = float(((10 * features[train:] @ w + b > 0).float() == test).float().mean())
    return accuracy, float(max(test.mean(), 1 - test.mean()))


def open_scorer(folder: Path, size: int) -> ClipScorer:
    if (folder / "clip_config.json").is_file():
        return ClipScorer.load(folder)
    run = json.loads((folder.parent.parent / "config.json").read_text())  # RUN/checkpoints/step-N
    tmp = Path(tempfile.mkdtemp())
    (tmp / "clip_config.json").write_text(json.dumps(run.get("clip") or clip_config(image_size=size)))
    (tmp / "model.safetensors").symlink_to((folder / "model.safetensors").resolve())
    return ClipScorer.load(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, required=True, help="a CLIP folder, or a CLIP run's checkpoint folder")
    parser.add_argument("--size", type=int, required=True, help="the CLIP's image size")
    parser.add_argument("--n", type=int, default=256, help="faces of the caption test")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scorer = open_scorer(args.clip, args.size)
    rng = np.random.default_rng(0)
    faces = SynthFaces(args.size, split="test", length=3000)
    print(f"caption test on {args.n} held-out faces:")
    for name in ATTRIBUTES:
        share, n, pair = caption_test(scorer, [faces[i] for i in range(args.n)], name, rng)
        print(f"  {name:10s} own caption wins {share:.3f} of {n}; {pair}")
    images = np.stack([faces[i].image for i in range(len(faces))])
    with torch.no_grad():
        features = torch.cat([scorer.model.encode_image(images_to_tensor(images[i:i + 250]), normalize=True)
                              for i in range(0, len(images), 250)])
    print("linear probe on image features (2,000 faces to fit, 1,000 to score):")
    for name in ("smiling", "beard", "eyeglasses", "gender"):
        labels = torch.tensor([float(getattr(faces[i].attributes, name) in (True, "male")) for i in range(len(faces))])
        accuracy, chance = linear_probe(features, labels)
        print(f"  {name:10s} {accuracy:.3f} (chance {chance:.3f})")


if __name__ == "__main__":
    main()
