"""The latent attributes of one synthetic face, and how to draw them at random.

A ``FaceAttributes`` record fixes everything about a synthetic face: ``render_face`` is a pure function of it.
Its fields fall in three groups, so that no single modality determines the image:

* *described* attributes (``CAPTIONED``): what captions talk about (hair colour, smiling, eyeglasses, ...);
* *geometry*: pose and proportions, which sketches and masks fix but captions do not;
* *appearance*: exact colours, background and lighting, which only the image shows.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

Gender = Literal["female", "male"]
HairColor = Literal["black", "brown", "blond", "red", "gray"]
HairStyle = Literal["bald", "short", "bob", "long"]
SkinTone = Literal["pale", "fair", "tan", "brown", "dark"]
EyeColor = Literal["brown", "blue", "green", "gray"]
FaceShape = Literal["oval", "round", "square", "long"]
RGB = tuple[int, int, int]

GENDERS: tuple[Gender, ...] = get_args(Gender)
HAIR_COLORS: tuple[HairColor, ...] = get_args(HairColor)
HAIR_STYLES: tuple[HairStyle, ...] = get_args(HairStyle)
SKIN_TONES: tuple[SkinTone, ...] = get_args(SkinTone)
EYE_COLORS: tuple[EyeColor, ...] = get_args(EyeColor)
FACE_SHAPES: tuple[FaceShape, ...] = get_args(FaceShape)

# Base colours; each sample jitters them so that a colour name is a range, not one value.
HAIR_RGB: dict[HairColor, RGB] = {
    "black": (28, 24, 22), "brown": (96, 60, 34), "blond": (224, 188, 112), "red": (166, 60, 28),
    "gray": (170, 168, 164),
}  # fmt: skip
SKIN_RGB: dict[SkinTone, RGB] = {
    "pale": (244, 216, 196), "fair": (228, 184, 150), "tan": (198, 144, 102), "brown": (146, 98, 64),
    "dark": (94, 60, 42),
}  # fmt: skip
IRIS_RGB: dict[EyeColor, RGB] = {
    "brown": (96, 56, 28), "blue": (56, 112, 196), "green": (64, 138, 70), "gray": (132, 142, 152),
}  # fmt: skip

CAPTIONED: tuple[str, ...] = (
    "gender", "hair_color", "hair_style", "bangs", "skin_tone", "eye_color", "face_shape", "smiling",
    "mouth_open", "eyeglasses", "hat", "beard", "earrings", "necklace",
)  # fmt: skip
"""The attributes captions describe (and ``parse_caption`` reads back)."""


@dataclass(frozen=True)
class FaceAttributes:
    """Everything that determines one synthetic face. Units: fractions of the image, degrees, 0-255 colours."""

    # described by captions
    gender: Gender
    hair_color: HairColor  # also colours brows and beard, so it is drawn even for bald faces
    hair_style: HairStyle
    bangs: bool
    skin_tone: SkinTone
    eye_color: EyeColor
    face_shape: FaceShape
    smiling: bool
    mouth_open: bool
    eyeglasses: bool
    hat: bool
    beard: bool
    earrings: bool
    necklace: bool
    # geometry
    center_x: float  # face centre
    center_y: float
    scale: float  # 1.0: the face is 0.7 of the image high
    rotation: float  # degrees, clockwise on screen
    eye_size: float  # the proportions below are multipliers around 1
    eye_spacing: float
    nose_length: float
    mouth_width: float
    # appearance
    skin_rgb: RGB
    hair_rgb: RGB
    iris_rgb: RGB
    lip_rgb: RGB
    cloth_rgb: RGB
    hat_rgb: RGB
    frame_rgb: RGB
    background_top: RGB
    background_bottom: RGB
    light_angle: float  # degrees, direction the light comes from in the face's frame
    light_strength: float  # 0: flat lighting
    texture_seed: int  # phase of the hair-strand texture

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"FaceAttributes.{name}={getattr(self, name)!r}, expected one of {allowed}")
        if self.hair_style == "bald" and self.bangs:
            raise ValueError("FaceAttributes: a bald face cannot have bangs")
        if not (0.5 <= self.scale <= 1.5 and abs(self.rotation) <= 45):
            raise ValueError(f"FaceAttributes: scale {self.scale} or rotation {self.rotation} out of range")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (colours become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FaceAttributes":
        """Inverse of ``to_dict`` (also accepts a row of ``ATTRIBUTE_DTYPE`` converted with ``record_to_dict``)."""
        kwargs = {f.name: _coerce(f.type, data[f.name]) for f in dataclasses.fields(cls)}
        return cls(**kwargs)


_CHOICES: dict[str, tuple[str, ...]] = {
    "gender": GENDERS, "hair_color": HAIR_COLORS, "hair_style": HAIR_STYLES, "skin_tone": SKIN_TONES,
    "eye_color": EYE_COLORS, "face_shape": FACE_SHAPES,
}  # fmt: skip


def _coerce(kind: Any, value: Any) -> Any:
    if kind is RGB:
        return tuple(int(c) for c in value)
    if kind is bool:
        return bool(value)
    if kind is int:
        return int(value)
    if kind is float:
        return float(value)
    return str(value)


def _numpy_field(kind: Any) -> Any:
    if kind is RGB:
        return ("u1", (3,))
    if kind in (bool, int, float):
        return {bool: "?", int: "i8", float: "f8"}[kind]
    return "U8"  # the Literal choices are all at most 8 characters


ATTRIBUTE_DTYPE = np.dtype([(f.name, _numpy_field(f.type)) for f in dataclasses.fields(FaceAttributes)])
"""A numpy structured dtype with one field per ``FaceAttributes`` field (for memory-mapped caches)."""


def attributes_to_records(attributes: list[FaceAttributes]) -> np.ndarray:
    """Pack records into a structured array of ``ATTRIBUTE_DTYPE``."""
    names = ATTRIBUTE_DTYPE.names or ()
    return np.array([tuple(getattr(a, n) for n in names) for a in attributes], dtype=ATTRIBUTE_DTYPE)


def record_to_attributes(row: np.void) -> FaceAttributes:
    """Unpack one row of an ``ATTRIBUTE_DTYPE`` array."""
    return FaceAttributes.from_dict({n: row[n] for n in ATTRIBUTE_DTYPE.names or ()})


def sample_attributes(rng: np.random.Generator) -> FaceAttributes:
    """Draw one face. The draws are made in a fixed order, so the result is a function of the rng state."""
    gender: Gender = GENDERS[rng.integers(2)]
    male = gender == "male"
    hair_style: HairStyle = HAIR_STYLES[rng.choice(4, p=[0.2, 0.55, 0.15, 0.1] if male else [0.04, 0.2, 0.33, 0.43])]
    hair_color: HairColor = HAIR_COLORS[rng.choice(5, p=[0.24, 0.24, 0.2, 0.14, 0.18])]
    skin_tone: SkinTone = SKIN_TONES[rng.integers(5)]
    eye_color: EyeColor = EYE_COLORS[rng.integers(4)]
    face_shape: FaceShape = FACE_SHAPES[rng.integers(4)]
    flags = rng.random(9)
    skin = jitter_rgb(rng, SKIN_RGB[skin_tone], 10)
    lipstick = rng.uniform(0.15, 0.35) if male else rng.uniform(0.3, 0.65)
    return FaceAttributes(
        gender=gender,
        hair_color=hair_color,
        hair_style=hair_style,
        bangs=hair_style != "bald" and bool(flags[0] < 0.3),
        skin_tone=skin_tone,
        eye_color=eye_color,
        face_shape=face_shape,
        smiling=bool(flags[1] < 0.5),
        mouth_open=bool(flags[2] < 0.4),
        eyeglasses=bool(flags[3] < 0.3),
        hat=bool(flags[4] < 0.2),
        beard=male and bool(flags[5] < 0.4),
        earrings=bool(flags[6] < (0.08 if male else 0.4)),
        necklace=bool(flags[7] < 0.2),
        center_x=float(0.5 + rng.uniform(-0.06, 0.06)),
        center_y=float(0.5 + rng.uniform(-0.04, 0.05)),
        scale=float(rng.uniform(0.9, 1.05)),
        rotation=float(rng.uniform(-12.0, 12.0)),
        eye_size=float(rng.uniform(0.85, 1.2)),
        eye_spacing=float(rng.uniform(0.9, 1.1)),
        nose_length=float(rng.uniform(0.85, 1.15)),
        mouth_width=float(rng.uniform(0.85, 1.2)),
        skin_rgb=skin,
        hair_rgb=jitter_rgb(rng, HAIR_RGB[hair_color], 12),
        iris_rgb=jitter_rgb(rng, IRIS_RGB[eye_color], 10),
        lip_rgb=_mix(skin, (186, 52, 72), lipstick),
        cloth_rgb=_random_rgb(rng),
        hat_rgb=_random_rgb(rng),
        frame_rgb=((30, 30, 36), (150, 150, 160), (110, 62, 30))[rng.integers(3)],
        background_top=(top := _random_rgb(rng)),
        background_bottom=top if flags[8] < 0.4 else _random_rgb(rng),
        light_angle=float(rng.uniform(0.0, 360.0)),
        light_strength=float(rng.uniform(0.0, 0.35)),
        texture_seed=int(rng.integers(2**31)),
    )


def jitter_rgb(rng: np.random.Generator, rgb: RGB, amount: int) -> RGB:
    shift = rng.integers(-amount, amount + 1) + rng.integers(-amount // 3, amount // 3 + 1, size=3)
    return tuple(int(c) for c in np.clip(np.array(rgb) + shift, 0, 255))  # type: ignore[return-value]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round((1 - t) * x + t * y)) for x, y in zip(a, b))  # type: ignore[return-value]


def _random_rgb(rng: np.random.Generator) -> RGB:
    return tuple(int(c) for c in rng.integers(0, 256, size=3))  # type: ignore[return-value]
