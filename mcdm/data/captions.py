"""Captions in the style of Multi-Modal-CelebA-HQ, written from (and parsed back into) face attributes.

"This woman has long blond hair and blue eyes. She wears eyeglasses. She is smiling."

Every attribute has one fixed wording, so ``parse_caption`` can map a caption back to the attributes it
mentions; variety comes from which attributes are mentioned, their order, the subject ("This woman",
"The man", "This person") and how clauses are grouped. Negatives are said explicitly ("does not wear a hat",
"has no beard", "is not smiling"), so a caption that mentions an attribute always fixes it.
"""

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from mcdm.data.attributes import CAPTIONED, EYE_COLORS, FACE_SHAPES, HAIR_COLORS, SKIN_TONES, FaceAttributes

CAPTIONS_PER_SAMPLE = 10  # as Multi-Modal-CelebA-HQ

_STYLE_WORD = {"short": "short", "bob": "shoulder-length", "long": "long"}
_WEARABLE = {"eyeglasses": "eyeglasses", "hat": "a hat", "earrings": "earrings", "necklace": "a necklace"}


def describable(attributes: FaceAttributes) -> tuple[str, ...]:
    """The attributes a caption can state for this face (no hair colour or bangs when bald, no beard on women)."""
    skip = set()
    if attributes.hair_style == "bald":
        skip |= {"hair_color", "bangs"}
    if attributes.gender == "female":
        skip.add("beard")
    return tuple(name for name in CAPTIONED if name not in skip)


def captions_for(attributes: FaceAttributes, rng: np.random.Generator, n: int = CAPTIONS_PER_SAMPLE) -> list[str]:
    """``n`` captions, each stating every describable attribute, in varied order and wording."""
    names = describable(attributes)
    return [_caption(attributes, names, rng) for _ in range(n)]


def partial_caption(attributes: FaceAttributes, rng: np.random.Generator, k: int,
                    among: Sequence[str] | None = None) -> str:
    """A caption that states ``k`` randomly chosen describable attributes (all of them if ``k`` is larger),
    chosen ``among`` the given names if any of them is describable."""
    if k < 1:
        raise ValueError(f"partial_caption: k must be at least 1, got {k}")
    names = describable(attributes)
    if among is not None and any(n in among for n in names):
        names = tuple(n for n in names if n in among)
    chosen = rng.choice(len(names), size=min(k, len(names)), replace=False)
    return _caption(attributes, tuple(names[i] for i in sorted(chosen)), rng)


_CHANGEABLE: dict[str, tuple[Any, ...]] = {
    "hair_color": HAIR_COLORS, "skin_tone": SKIN_TONES, "eye_color": EYE_COLORS, "bangs": (False, True),
    "smiling": (False, True), "mouth_open": (False, True), "eyeglasses": (False, True), "hat": (False, True),
    "beard": (False, True), "earrings": (False, True), "necklace": (False, True),
}  # fmt: skip
"""Attributes a contrast caption may change: one value for another, the face's other attributes still describable."""
MAX_CONTRASTS = 8
"""Contrast captions every face allows: a bald woman, the fewest, has 8 changeable attributes (no hair colour,
bangs or beard)."""


def contrast_captions(attributes: FaceAttributes, caption: str, rng: np.random.Generator, k: int) -> list[str]:
    """``k`` captions of the same face, each wrong about a different attribute (hard negatives for contrastive
    training): each states what ``caption`` states, with one changeable attribute given another value.

    The changed attributes are drawn first among those ``caption`` states, then among those it leaves unsaid;
    every face has at least ``MAX_CONTRASTS`` changeable attributes, so ``k`` may be up to that.
    """
    names = describable(attributes)
    changeable = [n for n in names if n in _CHANGEABLE]
    if not 1 <= k <= len(changeable):
        raise ValueError(f"contrast_captions: k must be between 1 and {len(changeable)} for this face, got {k}")
    stated = [n for n in parse_caption(caption) if n in names]
    said = [n for n in stated if n in _CHANGEABLE]
    unsaid = [n for n in changeable if n not in said]
    chosen = [said[i] for i in rng.permutation(len(said))][:k]
    chosen += [unsaid[i] for i in rng.permutation(len(unsaid))][:k - len(chosen)]
    captions = []
    for name in chosen:
        others = [v for v in _CHANGEABLE[name] if v != getattr(attributes, name)]
        changed = dataclasses.replace(attributes, **{name: others[int(rng.integers(len(others)))]})
        captions.append(_caption(changed, tuple(dict.fromkeys([*stated, name])), rng))
    return captions


def _caption(a: FaceAttributes, names: Sequence[str], rng: np.random.Generator) -> str:
    mentioned = set(names)
    if "gender" in mentioned:
        noun, pronoun, possessive = ("woman", "She", "her") if a.gender == "female" else ("man", "He", "his")
    else:
        noun, pronoun, possessive = "person", "The person", "their"
    subject = ("This ", "The ", "A ")[rng.integers(3)] + noun

    # (verb, phrases) clauses; looks, extras and expression are kept apart so sentences stay short
    looks: list[str] = []
    extras: list[str] = []
    state: list[str] = []
    worn: list[str] = []
    not_worn: list[str] = []
    hair_color = a.hair_color if "hair_color" in mentioned else None
    if a.hair_style == "bald" and "hair_style" in mentioned:
        state.append("bald")
    elif hair_color or "hair_style" in mentioned:
        style = _STYLE_WORD[a.hair_style] if "hair_style" in mentioned else None
        looks.append(" ".join(w for w in (style, hair_color, "hair") if w))
    if "skin_tone" in mentioned:
        looks.append(f"{a.skin_tone} skin")
    if "eye_color" in mentioned:
        looks.append(f"{a.eye_color} eyes")
    if "face_shape" in mentioned:
        looks.append(f"{'an' if a.face_shape == 'oval' else 'a'} {a.face_shape} face")
    if "bangs" in mentioned:
        extras.append("bangs" if a.bangs else "no bangs")
    if "beard" in mentioned:
        extras.append("a beard" if a.beard else "no beard")
    if "mouth_open" in mentioned:
        extras.append(f"{possessive} mouth {'slightly open' if a.mouth_open else 'closed'}")
    if "smiling" in mentioned:
        state.append("smiling" if a.smiling else "not smiling")
    for name, phrase in _WEARABLE.items():
        if name in mentioned:
            (worn if getattr(a, name) else not_worn).append(phrase)

    # "is bald and not smiling" keeps its order: "is not smiling and bald" would read as "not bald"
    groups = (
        ("has", _shuffled(looks, rng)),
        ("has", _shuffled(extras, rng)),
        ("is", state),
        ("wears", _shuffled(worn, rng)),
        ("does not wear", _shuffled(not_worn, rng)),
    )
    clauses = [f"{verb} {_join(items, 'or' if verb == 'does not wear' else 'and')}" for verb, items in groups if items]
    if not clauses:  # only the gender was chosen
        return f"This is a {noun}."
    if looks:  # like the dataset's captions, open with the looks ("has long blond hair ...")
        clauses = clauses[:1] + _shuffled(clauses[1:], rng)
    else:
        clauses = _shuffled(clauses, rng)
    sentences: list[str] = []
    while clauses:
        # sometimes fuse two clauses ("is smiling and wears a hat"), never around a negative list
        take = 2 if len(clauses) > 1 and rng.random() < 0.35 and "does not" not in clauses[0] + clauses[1] else 1
        head = subject if not sentences else pronoun
        sentences.append(f"{head} {' and '.join(clauses[:take])}.")
        clauses = clauses[take:]
    return " ".join(sentences)


def _shuffled(items: list[str], rng: np.random.Generator) -> list[str]:
    return [items[i] for i in rng.permutation(len(items))]


def _join(items: list[str], conjunction: str) -> str:
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


# ---------------------------------------------------------------- parsing

_WORD = r"\b{}\b"
_HAIR = re.compile(r"\b(?:(short|shoulder-length|long)\s+)?(?:(" + "|".join(HAIR_COLORS) + r"|grey)\s+)?hair\b")
_STYLE_FROM_WORD = {word: style for style, word in _STYLE_WORD.items()}


def parse_caption(caption: str) -> dict[str, Any]:
    """The attributes a caption states, as ``{name: value}`` with ``FaceAttributes`` values.

    Attributes the caption does not mention are absent. Understands the wording ``captions_for`` writes
    (and ``grey`` for gray); it is a checker for this dataset, not a general caption parser.
    """
    text = caption.lower()
    found: dict[str, Any] = {}
    if re.search(r"\b(woman|she|her)\b", text):
        found["gender"] = "female"
    elif re.search(r"\b(man|he|his)\b", text):
        found["gender"] = "male"
    if re.search(_WORD.format("bald"), text):
        found["hair_style"] = "bald"
    for match in _HAIR.finditer(text):
        style, color = match.groups()
        if style:
            found["hair_style"] = _STYLE_FROM_WORD[style]
        if color:
            found["hair_color"] = "gray" if color == "grey" else color
    nouns = (("skin_tone", SKIN_TONES, "skin"), ("eye_color", EYE_COLORS, "eyes"), ("face_shape", FACE_SHAPES, "face"))
    for name, choices, noun in nouns:
        match = re.search(r"\b(" + "|".join(choices) + r")\s+" + noun + r"\b", text)
        if match:
            found[name] = match.group(1)
    for name in ("bangs", "beard"):
        match = re.search(r"\b(no\s+|an?\s+)?" + name + r"\b", text)
        if match:
            found[name] = not (match.group(1) or "").startswith("no")
    if re.search(r"\bnot smiling\b", text):
        found["smiling"] = False
    elif re.search(r"\bsmiling\b", text):
        found["smiling"] = True
    if re.search(r"\bmouth (slightly )?open\b", text):
        found["mouth_open"] = True
    elif re.search(r"\bmouth closed\b", text):
        found["mouth_open"] = False
    for sentence in text.split("."):
        negative = "does not wear" in sentence
        for name in _WEARABLE:
            if re.search(_WORD.format(name), sentence):
                found[name] = not negative
    return found
