"""Drawing a synthetic face from its attributes: RGB image and CelebAMask-HQ label map, pixel-aligned.

The face is painted once, back to front, into a *material* map at ``SUPERSAMPLE`` times the output size
(materials are finer than labels: iris and pupil are both ``l_eye``, a beard is ``skin``). The image is that
map coloured, shaded and box-filtered down (anti-aliasing); the label map is the same map translated to
label ids and reduced by majority vote per output pixel. So the mask and the image never disagree.

Shapes are placed in *face units*: the origin is the face centre, one unit is half the face height, v points
down. The pose (translation, scale, rotation) maps face units to pixels, so every part moves together.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from mcdm.data.attributes import RGB, FaceAttributes
from mcdm.data.labels import LABELS

SUPERSAMPLE = 4
MIN_SIZE, MAX_SIZE = 32, 256


class Material(IntEnum):
    """What a high-resolution pixel is made of. Painting order is ``face_shapes``'s, not this one."""

    BACKGROUND = 0
    SKIN = 1
    BEARD = 2
    NOSE = 3
    NOSTRIL = 4
    FRAME = 5
    LENS = 6
    EYE_WHITE_L = 7
    IRIS_L = 8
    PUPIL_L = 9
    EYE_WHITE_R = 10
    IRIS_R = 11
    PUPIL_R = 12
    BROW_L = 13
    BROW_R = 14
    EAR_L = 15
    EAR_R = 16
    MOUTH = 17
    TEETH = 18
    U_LIP = 19
    L_LIP = 20
    HAIR = 21
    HAT = 22
    HAT_BAND = 23
    EARRING = 24
    NECKLACE = 25
    NECK = 26
    CLOTH = 27


# The label each material belongs to. l_/r_ parts are on the image's left/right (the viewer's side).
_MATERIAL_LABEL: dict[Material, str] = {
    Material.BACKGROUND: "background", Material.SKIN: "skin", Material.BEARD: "skin", Material.NOSE: "nose",
    Material.NOSTRIL: "nose", Material.FRAME: "eye_g", Material.LENS: "eye_g", Material.EYE_WHITE_L: "l_eye",
    Material.IRIS_L: "l_eye", Material.PUPIL_L: "l_eye", Material.EYE_WHITE_R: "r_eye",
    Material.IRIS_R: "r_eye", Material.PUPIL_R: "r_eye", Material.BROW_L: "l_brow", Material.BROW_R: "r_brow",
    Material.EAR_L: "l_ear", Material.EAR_R: "r_ear", Material.MOUTH: "mouth", Material.TEETH: "mouth",
    Material.U_LIP: "u_lip", Material.L_LIP: "l_lip", Material.HAIR: "hair", Material.HAT: "hat",
    Material.HAT_BAND: "hat", Material.EARRING: "ear_r", Material.NECKLACE: "neck_l", Material.NECK: "neck",
    Material.CLOTH: "cloth",
}  # fmt: skip
MATERIAL_TO_LABEL = np.array([LABELS.index(_MATERIAL_LABEL[m]) for m in Material], dtype=np.uint8)

# Per material, 1.0 or 0.0: does it get the hair-strand texture; is it lit (eye whites and teeth stay bright).
_STRANDED = np.isin(Material, [Material.HAIR, Material.BEARD, Material.BROW_L, Material.BROW_R]).astype(np.float32)
_UNLIT = [Material.BACKGROUND, Material.EYE_WHITE_L, Material.EYE_WHITE_R, Material.TEETH]
_SHADED = (~np.isin(Material, _UNLIT)).astype(np.float32)

# Face outline per shape: half width, half height, superellipse exponent, chin taper.
_FACE_SHAPE: dict[str, tuple[float, float, float, float]] = {
    "oval": (0.76, 1.0, 2.0, 0.24), "round": (0.86, 0.95, 2.0, 0.1), "square": (0.8, 0.97, 3.2, 0.08),
    "long": (0.68, 1.04, 2.2, 0.2),
}  # fmt: skip
_FACE_HEIGHT = 0.38  # half the face height as a fraction of the image, at scale 1

Shape = tuple[Material, np.ndarray]  # a material and the polygon (N x 2, face units) it fills


@dataclass(frozen=True)
class _Pose:
    """Maps face units to high-resolution pixel coordinates."""

    cx: float
    cy: float
    unit: float  # pixels per face unit
    cos: float
    sin: float

    def pixels(self, uv: np.ndarray) -> list[tuple[float, float]]:
        u, v = uv[:, 0] * self.unit, uv[:, 1] * self.unit
        x = self.cx + u * self.cos - v * self.sin
        y = self.cy + u * self.sin + v * self.cos
        return list(zip(x.tolist(), y.tolist()))

    def face_coords(self, hr: int) -> tuple[np.ndarray, np.ndarray]:
        """Face-unit coordinates (u, v) of every high-resolution pixel centre."""
        grid = np.arange(hr, dtype=np.float32) + 0.5
        dx, dy = grid[None, :] - self.cx, grid[:, None] - self.cy
        u = (dx * self.cos + dy * self.sin) / self.unit
        v = (-dx * self.sin + dy * self.cos) / self.unit
        return u, v


def render_face(attributes: FaceAttributes, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw a face: ``(image HxWx3 uint8, mask HxW uint8 of LABELS ids)``, ``size`` from 32 to 256."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"render_face: size must be {MIN_SIZE}..{MAX_SIZE}, got {size}")
    hr = size * SUPERSAMPLE
    angle = np.deg2rad(attributes.rotation)
    pose = _Pose(
        cx=attributes.center_x * hr,
        cy=attributes.center_y * hr,
        unit=_FACE_HEIGHT * attributes.scale * hr,
        cos=float(np.cos(angle)),
        sin=float(np.sin(angle)),
    )
    canvas = Image.new("L", (hr, hr), int(Material.BACKGROUND))
    draw = ImageDraw.Draw(canvas)
    for material, polygon in face_shapes(attributes):
        draw.polygon(pose.pixels(polygon), fill=int(material))
    materials = np.asarray(canvas)
    image = _shade(materials, pose, attributes)
    image = image.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
    mask = _majority_labels(MATERIAL_TO_LABEL[materials], size)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), mask


# ---------------------------------------------------------------- shapes (face units)


def _ellipse(cx: float, cy: float, ax: float, ay: float, power: float = 2.0, n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    # superellipse: |x|^p + |y|^p = 1; power 2 is an ordinary ellipse
    x = np.sign(c) * np.abs(c) ** (2 / power)
    y = np.sign(s) * np.abs(s) ** (2 / power)
    return np.stack([cx + ax * x, cy + ay * y], axis=1)


def _band(points: np.ndarray, half_width: float | np.ndarray) -> np.ndarray:
    """A thick stroke along a polyline, as one polygon."""
    tangent = np.gradient(points, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    offset = normal * np.asarray(half_width).reshape(-1, 1)
    return np.concatenate([points + offset, (points - offset)[::-1]])


def _curve(u0: float, u1: float, fn: Callable[[np.ndarray], np.ndarray], n: int = 24) -> np.ndarray:
    """The polyline (u, fn(u)) for u from u0 to u1."""
    u = np.linspace(u0, u1, n)
    return np.stack([u, fn(u)], axis=1)


def _face_outline(a: FaceAttributes, grow: float = 0.0, n: int = 64) -> np.ndarray:
    half_w, half_h, power, taper = _FACE_SHAPE[a.face_shape]
    pts = _ellipse(0.0, 0.0, half_w + grow, half_h + grow, power, n)
    chin = np.clip(pts[:, 1], 0, None) / (half_h + grow)
    pts[:, 0] *= 1 - taper * chin**2  # narrower towards the chin
    return pts


def _face_half_width(a: FaceAttributes) -> float:
    return _FACE_SHAPE[a.face_shape][0]


def _face_width_at(a: FaceAttributes, v: np.ndarray) -> np.ndarray:
    """Half width of the face outline at height ``v`` (same formula as ``_face_outline``)."""
    half_w, half_h, power, taper = _FACE_SHAPE[a.face_shape]
    t = np.clip(np.abs(v) / half_h, 0, 1)
    return half_w * (1 - t**power) ** (1 / power) * (1 - taper * np.clip(v / half_h, 0, None) ** 2)


def _hair_shapes(a: FaceAttributes) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(hair behind the head, hair in front of the face with a window cut out for the face)."""
    if a.hair_style == "bald":
        return None, None
    w, h = _face_half_width(a), _FACE_SHAPE[a.face_shape][1]
    grow, bottom = {"short": (0.07, -0.02), "bob": (0.15, 0.6), "long": (0.22, 2.6)}[a.hair_style]
    crown = _ellipse(0.0, -0.06, w + grow, h + grow * 0.7 + 0.04, 2.0, 64)
    top = crown[crown[:, 1] <= 0.0]
    top = top[np.argsort(top[:, 0])]
    outer = np.concatenate([[[-(w + grow), bottom]], top, [[w + grow, bottom]]])
    if a.hair_style == "long":  # long hair widens over the shoulders
        outer[0, 0] -= 0.25
        outer[-1, 0] += 0.25
    # The window the face shows through: a forehead hairline, then down the cheeks just inside the face
    # outline, so that hair always overlaps the face edge (no background gap at the temples).
    hairline = -0.45 if a.bangs else -0.64
    part = 0.18 if a.texture_seed % 2 else -0.18  # side parting, left or right
    dip = 0.0 if a.bangs else 0.06

    def hairline_at(u: np.ndarray) -> np.ndarray:
        return hairline + 0.12 * (u / w) ** 2 - dip * np.exp(-((u - part) ** 2) / 0.02)

    line = _curve(-0.8 * w, 0.8 * w, hairline_at)
    if a.bangs:  # a jagged fringe
        line[1:-1:2, 1] += 0.05
    side_bottom = -0.12 if a.hair_style == "short" else min(bottom, 0.62)
    side_v = np.linspace(line[-1, 1], side_bottom, 10)
    side = np.stack([0.94 * _face_width_at(a, side_v), side_v], axis=1)
    left_side = side[::-1] * [-1, 1]
    window = np.concatenate([left_side, line, side])
    if a.hair_style == "long":  # below the chin the hair parts around the neck
        window = np.concatenate([[[-0.4, bottom], [-0.4, 0.75]], window, [[0.4, 0.75], [0.4, bottom]]])
    front = np.concatenate([outer, window[::-1]])
    back = outer if a.hair_style != "short" else None
    return back, front


def _mouth_shapes(a: FaceAttributes) -> list[Shape]:
    half = 0.26 * a.mouth_width
    corner = -0.09 if a.smiling else 0.015  # smiling lifts the corners
    gap = 0.09 if a.mouth_open else 0.0

    def line(u: np.ndarray) -> np.ndarray:  # where the lips meet
        return 0.47 + corner * (u / half) ** 2

    def opening(u: np.ndarray) -> np.ndarray:  # half the gap between the lips, widest in the middle
        return gap / 2 * (1 - (u / half) ** 2)

    def fullness(u: np.ndarray, thickness: float) -> np.ndarray:
        return thickness * np.sqrt(1 - (u / half) ** 2)

    def bow(u: np.ndarray) -> np.ndarray:  # the dip in the middle of the upper lip
        return 0.015 * np.exp(-(u**2) / 0.003)

    upper_top = _curve(-half, half, lambda u: line(u) - opening(u) - fullness(u, 0.09) + bow(u))
    upper_bottom = _curve(half, -half, lambda u: line(u) - opening(u))
    lower_top = _curve(-half, half, lambda u: line(u) + opening(u))
    lower_bottom = _curve(half, -half, lambda u: line(u) + opening(u) + fullness(u, 0.09))
    shapes = [
        (Material.U_LIP, np.concatenate([upper_top, upper_bottom])),
        (Material.L_LIP, np.concatenate([lower_top, lower_bottom])),
    ]
    if a.mouth_open:
        shapes.append((Material.MOUTH, np.concatenate([upper_bottom[::-1], lower_top[::-1]])))
        if a.smiling:  # upper teeth show in an open smile
            teeth_top = upper_bottom[::-1][3:-3]
            shapes.append((Material.TEETH, np.concatenate([teeth_top, teeth_top[::-1] + [0, 0.035]])))
    return shapes


def _body_shapes(a: FaceAttributes) -> list[Shape]:
    shoulders = _ellipse(0.0, 1.95, 1.75, 0.75, 2.4)
    shapes = [
        (Material.NECK, np.array([[-0.36, 0.4], [0.36, 0.4], [0.42, 3.0], [-0.42, 3.0]])),
        (Material.CLOTH, np.concatenate([shoulders[shoulders[:, 1] < 1.95], [[-1.75, 3.0], [1.75, 3.0]]])),
        (Material.NECK, np.array([[-0.3, 1.15], [0.3, 1.15], [0.0, 1.5]])),  # V neckline
    ]
    if a.necklace:
        chain = _curve(-0.38, 0.38, lambda u: 1.0 + 0.25 * (1 - (u / 0.38) ** 2))
        shapes.append((Material.NECKLACE, _band(chain, 0.035)))
    return shapes


def _skin_shapes(a: FaceAttributes) -> list[Shape]:
    """Ears, face, beard and nose."""
    w = _face_half_width(a)
    shapes = [
        (Material.EAR_L, _ellipse(-(w + 0.01), -0.02, 0.11, 0.2)),
        (Material.EAR_R, _ellipse(w + 0.01, -0.02, 0.11, 0.2)),
        (Material.SKIN, _face_outline(a)),
    ]
    if a.beard:  # the lower face outline, closed by a moustache line under the nose
        jaw = _face_outline(a, grow=0.02)
        jaw = jaw[jaw[:, 1] > 0.12]
        jaw = jaw[np.argsort(-jaw[:, 0])]
        moustache = _curve(-0.26, 0.26, lambda u: 0.3 + 0.12 * (u / 0.26) ** 2)
        shapes.append((Material.BEARD, np.concatenate([jaw, moustache])))
    tip = 0.24 * a.nose_length
    nose = [[-0.035, -0.06], [0.035, -0.06], [0.1, tip], [0.05, tip + 0.04], [-0.05, tip + 0.04], [-0.1, tip]]
    shapes.append((Material.NOSE, np.array(nose)))
    shapes += [(Material.NOSTRIL, _ellipse(side * 0.045, tip + 0.015, 0.025, 0.015, n=16)) for side in (-1, 1)]
    return shapes


def _eye_centre(a: FaceAttributes) -> tuple[float, float]:
    return 0.3 * a.eye_spacing, -0.1


def _glasses_shapes(a: FaceAttributes) -> list[Shape]:
    eye_x, eye_y = _eye_centre(a)
    lens_w, lens_h, rim = 0.2, 0.15, 0.04
    shapes: list[Shape] = []
    for side in (-1, 1):
        ear = side * (_face_half_width(a) + 0.02)
        temple = np.array([[side * (eye_x + lens_w), eye_y - 0.06], [ear, eye_y - 0.04]])
        shapes += [
            (Material.FRAME, _ellipse(side * eye_x, eye_y, lens_w + rim, lens_h + rim, 2.6)),
            (Material.LENS, _ellipse(side * eye_x, eye_y, lens_w, lens_h, 2.6)),
            (Material.FRAME, _band(temple, 0.02)),
        ]
    bridge = np.array([[-eye_x + lens_w, eye_y - 0.03], [eye_x - lens_w, eye_y - 0.03]])
    return [*shapes, (Material.FRAME, _band(bridge, 0.022))]


def _eye_and_brow_shapes(a: FaceAttributes) -> list[Shape]:
    eye_x, eye_y = _eye_centre(a)
    eye_w, eye_h = 0.14 * a.eye_size, (0.068 if a.smiling else 0.082) * a.eye_size  # smiling narrows the eyes
    iris_r = 0.6 * eye_h + 0.012
    glance = 0.2 * np.sin(a.texture_seed)  # where the eyes look, so irises are not always centred
    brow_width = 0.06 if a.gender == "male" else 0.045
    shapes: list[Shape] = []
    sides = ((-1, Material.EYE_WHITE_L, Material.IRIS_L, Material.PUPIL_L, Material.BROW_L),
             (1, Material.EYE_WHITE_R, Material.IRIS_R, Material.PUPIL_R, Material.BROW_R))  # fmt: skip
    for side, white, iris, pupil, brow in sides:
        iris_x = side * eye_x + glance * eye_w
        shapes += [
            (white, _ellipse(side * eye_x, eye_y, eye_w, eye_h, n=32)),
            (iris, _ellipse(iris_x, eye_y, iris_r, iris_r, n=24)),
            (pupil, _ellipse(iris_x, eye_y, 0.25 * eye_h, 0.25 * eye_h, n=16)),
        ]
        arch = _curve(side * (eye_x - 0.15), side * (eye_x + 0.16), lambda u: -0.36 + 1.95 * (u - side * eye_x) ** 2)
        shapes.append((brow, _band(arch, np.linspace(brow_width, 0.6 * brow_width, len(arch)))))  # thinner outwards
    return shapes


def _accessory_shapes(a: FaceAttributes) -> list[Shape]:
    """Hat and earrings, in front of everything else."""
    w, h = _face_half_width(a), _FACE_SHAPE[a.face_shape][1]
    shapes: list[Shape] = []
    if a.hat:
        dome = _ellipse(0.0, -0.1, w + 0.2, h + 0.12, 2.2)
        crown = np.concatenate([dome[dome[:, 1] < -0.52], [[w + 0.2, -0.52], [-(w + 0.2), -0.52]]])
        band = np.array([[-(w + 0.22), -0.62], [w + 0.22, -0.62], [w + 0.2, -0.47], [-(w + 0.2), -0.47]])
        shapes += [(Material.HAT, crown), (Material.HAT_BAND, band)]
    if a.earrings:
        shapes += [(Material.EARRING, _ellipse(side * (w + 0.03), 0.22, 0.04, 0.045, n=16)) for side in (-1, 1)]
    return shapes


def face_shapes(a: FaceAttributes) -> list[Shape]:
    """Every part as (material, polygon in face units), back to front.

    The order of the front-most parts follows CelebAMask-HQ's own overwrite order (brows over eyeglasses,
    hair over the face, hat over hair), so the label map looks like the dataset's.
    """
    hair_back, hair_front = _hair_shapes(a)
    shapes = [(Material.HAIR, hair_back)] if hair_back is not None else []
    shapes += _body_shapes(a) + _skin_shapes(a)
    if a.eyeglasses:
        shapes += _glasses_shapes(a)
    shapes += _eye_and_brow_shapes(a) + _mouth_shapes(a)
    if hair_front is not None:
        shapes.append((Material.HAIR, hair_front))
    return shapes + _accessory_shapes(a)


# ---------------------------------------------------------------- colour and shading


def _material_colors(a: FaceAttributes) -> np.ndarray:
    def dim(rgb: RGB, k: float) -> tuple[float, float, float]:
        return (rgb[0] * k, rgb[1] * k, rgb[2] * k)

    colors = np.zeros((len(Material), 3), dtype=np.float32)
    skin = a.skin_rgb
    table: dict[Material, tuple[float, float, float] | RGB] = {
        Material.SKIN: skin, Material.BEARD: dim(a.hair_rgb, 0.9), Material.NOSE: dim(skin, 0.9),
        Material.NOSTRIL: dim(skin, 0.45), Material.FRAME: a.frame_rgb,
        Material.LENS: (skin[0] * 0.85 + 20, skin[1] * 0.85 + 26, skin[2] * 0.85 + 36),
        Material.EYE_WHITE_L: (236, 234, 228), Material.EYE_WHITE_R: (236, 234, 228),
        Material.IRIS_L: a.iris_rgb, Material.IRIS_R: a.iris_rgb, Material.PUPIL_L: (16, 12, 12),
        Material.PUPIL_R: (16, 12, 12), Material.BROW_L: dim(a.hair_rgb, 0.7), Material.BROW_R: dim(a.hair_rgb, 0.7),
        Material.EAR_L: dim(skin, 0.93), Material.EAR_R: dim(skin, 0.93), Material.MOUTH: (70, 18, 24),
        Material.TEETH: (240, 236, 222), Material.U_LIP: dim(a.lip_rgb, 0.9), Material.L_LIP: a.lip_rgb,
        Material.HAIR: a.hair_rgb, Material.HAT: a.hat_rgb, Material.HAT_BAND: dim(a.hat_rgb, 0.7),
        Material.EARRING: (236, 196, 70), Material.NECKLACE: (226, 226, 236), Material.NECK: dim(skin, 0.88),
        Material.CLOTH: a.cloth_rgb,
    }  # fmt: skip
    for material, rgb in table.items():
        colors[material] = rgb
    return colors


def _shade(materials: np.ndarray, pose: _Pose, a: FaceAttributes) -> np.ndarray:
    """Colour the material map: directional light on a rounded head, hair strands, gradient background."""
    hr = materials.shape[0]
    u, v = pose.face_coords(hr)
    angle = np.deg2rad(a.light_angle)
    light = 1.0 + a.light_strength * np.clip(u * np.cos(angle) + v * np.sin(angle), -1.5, 1.5)
    w = _face_half_width(a)
    rounding = 1.0 - 0.14 * np.clip((u / w) ** 2 + v**2, 0, 1.5)  # darker towards the outline
    phase = (a.texture_seed % 1000) / 1000 * 2 * np.pi
    strands = 0.08 * np.sin(26.0 * (u + 0.12 * np.sin(3.0 * v + phase)) + phase)
    # per material: how much light it takes (0 or 1) and how much strand texture (0 or 1)
    shading = 1.0 + _SHADED[materials] * (light * rounding - 1.0) + _STRANDED[materials] * strands
    image = _material_colors(a)[materials] * shading[..., None]
    t = np.linspace(0.0, 1.0, hr, dtype=np.float32)[:, None, None]
    background = (1 - t) * np.array(a.background_top, np.float32) + t * np.array(a.background_bottom, np.float32)
    return np.where((materials == Material.BACKGROUND)[..., None], background, image)


@lru_cache(maxsize=8)
def _block_index(size: int) -> np.ndarray:
    """For each high-resolution pixel, the flat index of the output pixel it falls in."""
    rows = np.arange(size * SUPERSAMPLE) // SUPERSAMPLE
    return (rows[:, None] * size + rows[None, :]).ravel()


def _majority_labels(labels_hr: np.ndarray, size: int) -> np.ndarray:
    """Reduce a supersampled label map by majority vote in each output pixel (ties: lower id)."""
    n = len(LABELS)
    votes = np.bincount(_block_index(size) * n + labels_hr.ravel(), minlength=size * size * n)
    return votes.reshape(size, size, n).argmax(axis=2).astype(np.uint8)
