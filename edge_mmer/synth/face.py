"""Procedural talking-face renderer (OpenCV + numpy).

Faces are drawn so that OpenCV's stock Haar cascade
(``haarcascade_frontalface_default.xml``) detects them: a shaded skin ellipse,
dark eye sockets and brows, a bright nose bridge, lips and a chin shadow.

Identity (per speaker) controls skin tone, face shape, eye spacing, hair and
glasses; :class:`Expression` (per utterance, class dependent) controls brows,
eyes, mouth and nose.  The face is deliberately ambiguous between ``angry`` and
``disgust`` (both lowered, angled brows; they differ only subtly in the
mouth/nose), whereas the synthetic voice confuses ``neutral`` and ``disgust``.

Everything is deterministic given a :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edge_mmer.config import LABELS

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FRAME_SIZE",
    "Expression",
    "FaceIdentity",
    "FacePose",
    "HaarStats",
    "base_expression",
    "haar_detect",
    "haar_detection_rate",
    "neutral_expression",
    "random_identity",
    "render_face",
    "sample_expression",
    "sample_pose",
]

#: Default (width, height) of rendered frames.
DEFAULT_FRAME_SIZE: tuple[int, int] = (320, 240)

_LABELS = LABELS


@dataclass(frozen=True)
class FaceIdentity:
    """Static appearance of one synthetic speaker.

    Geometric values are relative to the frame height so that the renderer
    works at any resolution.
    """

    skin_bgr: tuple[float, float, float]
    face_w: float  # half width of the face ellipse / frame height
    face_h: float  # half height of the face ellipse / frame height
    eye_spacing: float  # eye centre offset from midline / face half-width
    eye_size: float  # eye half-width / face half-width
    iris_bgr: tuple[float, float, float]
    hair_bgr: tuple[float, float, float]
    hair_style: int  # 0 = short, 1 = long, 2 = receding, 3 = fringe
    lip_bgr: tuple[float, float, float]
    background_bgr: tuple[float, float, float]
    shirt_bgr: tuple[float, float, float]
    glasses: bool = False


@dataclass(frozen=True)
class Expression:
    """Facial expression parameters (all dimensionless)."""

    brow_raise: float = 0.0  # + raises the brows (surprise/fear), - lowers
    brow_angle: float = 0.0  # + inner ends down (anger), - inner ends up (sadness)
    eye_open: float = 1.0  # eye aperture multiplier
    mouth_curve: float = 0.0  # + smile, - frown
    mouth_open: float = 0.0  # resting jaw opening, 0..1
    mouth_width: float = 1.0  # mouth width multiplier
    nose_wrinkle: float = 0.0  # 0..1, wrinkles on the nose bridge
    upper_lip_raise: float = 0.0  # 0..1, raised upper lip (disgust)
    cheek_raise: float = 0.0  # 0..1, raised cheeks (smile)


@dataclass(frozen=True)
class FacePose:
    """Per-frame camera/pose perturbation and image conditions."""

    roll_deg: float = 0.0
    shift_x: float = 0.0  # fraction of frame width
    shift_y: float = 0.0  # fraction of frame height
    scale: float = 1.0
    light_angle: float = 0.0  # direction of the lighting gradient (radians)
    light_strength: float = 0.0  # 0..1 amplitude of the gradient
    brightness: float = 1.0  # global gain
    noise_std: float = 3.0  # gaussian pixel noise (0..255 scale)


# Per-class expression prototypes.  angry and disgust are intentionally close.
_PROTOTYPES: dict[str, Expression] = {
    "neutral": Expression(),
    "happy": Expression(
        brow_raise=0.15,
        brow_angle=-0.05,
        eye_open=0.85,
        mouth_curve=1.0,
        mouth_open=0.25,
        mouth_width=1.2,
        cheek_raise=1.0,
    ),
    "angry": Expression(
        brow_raise=-0.65,
        brow_angle=1.0,
        eye_open=0.8,
        mouth_curve=-0.35,
        mouth_open=0.05,
        mouth_width=0.9,
        nose_wrinkle=0.25,
        upper_lip_raise=0.1,
    ),
    "sad": Expression(
        brow_raise=0.1,
        brow_angle=-0.9,
        eye_open=0.7,
        mouth_curve=-0.9,
        mouth_open=0.0,
        mouth_width=0.9,
    ),
    "fear": Expression(
        brow_raise=0.9,
        brow_angle=-0.45,
        eye_open=1.45,
        mouth_curve=-0.2,
        mouth_open=0.6,
        mouth_width=1.05,
    ),
    "disgust": Expression(
        brow_raise=-0.55,
        brow_angle=0.85,
        eye_open=0.75,
        mouth_curve=-0.45,
        mouth_open=0.08,
        mouth_width=0.9,
        nose_wrinkle=0.45,
        upper_lip_raise=0.35,
    ),
}

_EXPR_JITTER: dict[str, float] = {
    "brow_raise": 0.2,
    "brow_angle": 0.2,
    "eye_open": 0.1,
    "mouth_curve": 0.2,
    "mouth_open": 0.06,
    "mouth_width": 0.05,
    "nose_wrinkle": 0.12,
    "upper_lip_raise": 0.12,
    "cheek_raise": 0.15,
}


def base_expression(label: str) -> Expression:
    """Return the noise-free expression prototype for ``label``."""
    try:
        return _PROTOTYPES[label]
    except KeyError:
        raise ValueError(f"unknown emotion label {label!r}; expected one of {_LABELS}") from None


def neutral_expression() -> Expression:
    """The neutral expression prototype."""
    return _PROTOTYPES["neutral"]


def sample_expression(label: str, rng: np.random.Generator, jitter: float = 1.0) -> Expression:
    """Draw a per-utterance expression for ``label`` with random variation."""
    proto = base_expression(label)
    values: dict[str, float] = {}
    for name, sd in _EXPR_JITTER.items():
        v = float(getattr(proto, name)) + float(rng.normal(0.0, sd * jitter))
        values[name] = v
    values["eye_open"] = float(np.clip(values["eye_open"], 0.5, 1.7))
    values["mouth_open"] = float(np.clip(values["mouth_open"], 0.0, 0.8))
    values["mouth_width"] = float(np.clip(values["mouth_width"], 0.75, 1.3))
    for name in ("nose_wrinkle", "upper_lip_raise", "cheek_raise"):
        values[name] = float(np.clip(values[name], 0.0, 1.0))
    return Expression(**values)


def _rand_color(rng: np.random.Generator, lo: tuple[float, ...], hi: tuple[float, ...]) -> tuple[float, float, float]:
    c = rng.uniform(np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))
    return (float(c[0]), float(c[1]), float(c[2]))


def _gray(c: tuple[float, float, float]) -> float:
    return 0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2]


def _background(
    rng: np.random.Generator, skin: tuple[float, float, float], hair: tuple[float, float, float]
) -> tuple[float, float, float]:
    """A background colour that contrasts with both the skin and the hair (helps the Haar cascade)."""
    c = _rand_color(rng, (60.0, 60.0, 60.0), (200.0, 200.0, 200.0))
    for _ in range(50):
        if abs(_gray(c) - _gray(skin)) >= 45.0 and abs(_gray(c) - _gray(hair)) >= 40.0:
            break
        c = _rand_color(rng, (60.0, 60.0, 60.0), (200.0, 200.0, 200.0))
    return c


def random_identity(rng: np.random.Generator) -> FaceIdentity:
    """Draw a random face identity."""
    # Skin tones in BGR from light to dark-ish; keep enough contrast with features.
    tones = [
        (150.0, 180.0, 225.0),
        (130.0, 165.0, 215.0),
        (110.0, 150.0, 200.0),
        (95.0, 130.0, 180.0),
        (80.0, 115.0, 165.0),
        (120.0, 160.0, 205.0),
    ]
    base = np.asarray(tones[int(rng.integers(len(tones)))])
    skin = base + rng.normal(0.0, 6.0, size=3)
    hair_palette = [
        (20.0, 25.0, 30.0),
        (30.0, 50.0, 80.0),
        (40.0, 70.0, 120.0),
        (60.0, 110.0, 170.0),
        (120.0, 120.0, 125.0),
        (15.0, 15.0, 15.0),
    ]
    hair = np.asarray(hair_palette[int(rng.integers(len(hair_palette)))]) + rng.normal(0.0, 5.0, size=3)
    skin_t = (float(skin[0]), float(skin[1]), float(skin[2]))
    return FaceIdentity(
        skin_bgr=skin_t,
        face_w=float(rng.uniform(0.205, 0.245)),
        face_h=float(rng.uniform(0.29, 0.32)),
        eye_spacing=float(rng.uniform(0.37, 0.44)),
        eye_size=float(rng.uniform(0.19, 0.23)),
        iris_bgr=_rand_color(rng, (20.0, 30.0, 20.0), (110.0, 90.0, 70.0)),
        hair_bgr=(float(hair[0]), float(hair[1]), float(hair[2])),
        hair_style=int(rng.integers(4)),
        lip_bgr=(
            float(skin_t[0] * 0.55),
            float(skin_t[1] * 0.5),
            float(min(255.0, skin_t[2] * 0.8)),
        ),
        background_bgr=_background(rng, skin_t, (float(hair[0]), float(hair[1]), float(hair[2]))),
        shirt_bgr=_rand_color(rng, (30.0, 30.0, 30.0), (200.0, 200.0, 200.0)),
        glasses=bool(rng.random() < 0.3),
    )


def sample_pose(rng: np.random.Generator, strength: float = 1.0) -> FacePose:
    """Draw a small random pose / lighting perturbation."""
    return FacePose(
        roll_deg=float(rng.normal(0.0, 4.0 * strength)),
        shift_x=float(rng.normal(0.0, 0.025 * strength)),
        shift_y=float(rng.normal(0.0, 0.02 * strength)),
        scale=float(np.clip(rng.normal(1.0, 0.04 * strength), 0.88, 1.12)),
        light_angle=float(rng.uniform(0.0, 2.0 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.25 * strength)),
        brightness=float(np.clip(rng.normal(1.0, 0.08 * strength), 0.8, 1.2)),
        noise_std=float(rng.uniform(1.5, 5.0)),
    )


class Blinker:
    """Eye blinks: two frames each (half-closed, closed), every 2-5 s after the first one."""

    def __init__(self, rng: np.random.Generator, first_at: float | None = None) -> None:
        self.rng = rng
        self.next_at = float(rng.uniform(0.5, 3.0)) if first_at is None else first_at
        self.left = 0

    def step(self, t: float) -> float:
        """Eyelid closure (0 open, 0.5 half, 1 closed) for the frame at ``t`` seconds."""
        if self.left > 0:
            self.left -= 1
            return 1.0 if self.left > 0 else 0.5
        if t >= self.next_at:
            self.left = 2
            self.next_at = t + float(self.rng.uniform(2.0, 5.0))
            return 0.5
        return 0.0


def smooth_pose(prev: FacePose, rng: np.random.Generator, alpha: float = 0.15) -> FacePose:
    """Random-walk a pose a little (for temporally coherent video)."""
    target = sample_pose(rng)
    a = alpha
    return FacePose(
        roll_deg=(1 - a) * prev.roll_deg + a * target.roll_deg,
        shift_x=(1 - a) * prev.shift_x + a * target.shift_x,
        shift_y=(1 - a) * prev.shift_y + a * target.shift_y,
        scale=(1 - a) * prev.scale + a * target.scale,
        light_angle=prev.light_angle,
        light_strength=prev.light_strength,
        brightness=prev.brightness,
        noise_std=prev.noise_std,
    )


# --------------------------------------------------------------------------
# rendering helpers
# --------------------------------------------------------------------------

_SS = 4  # fixed-point shift for sub-pixel drawing
_SSF = float(1 << _SS)


def _pt(x: float, y: float) -> tuple[int, int]:
    return (round(x * _SSF), round(y * _SSF))


def _ax(a: float, b: float) -> tuple[int, int]:
    return (max(1, round(a * _SSF)), max(1, round(b * _SSF)))


def _ellipse(
    img: np.ndarray,
    c: tuple[float, float],
    axes: tuple[float, float],
    angle: float,
    color: tuple[float, ...],
    thickness: int = -1,
    start: float = 0.0,
    end: float = 360.0,
) -> None:
    cv2.ellipse(img, _pt(*c), _ax(*axes), angle, start, end, color, thickness, cv2.LINE_AA, _SS)


def _poly(img: np.ndarray, pts: np.ndarray, color: tuple[float, ...]) -> None:
    p = np.round(pts * _SSF).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(img, [p], color, cv2.LINE_AA, _SS)


def _polyline(img: np.ndarray, pts: np.ndarray, color: tuple[float, ...], thickness: int) -> None:
    p = np.round(pts * _SSF).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(img, [p], False, color, thickness, cv2.LINE_AA, _SS)


def _scaled(c: tuple[float, float, float], k: float) -> tuple[float, float, float]:
    return (c[0] * k, c[1] * k, c[2] * k)


@lru_cache(maxsize=8)
def _grids(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def _blend_mask(img: np.ndarray, mask: np.ndarray, color: tuple[float, float, float], alpha: float) -> None:
    """In place: img = img*(1-a*mask) + color*a*mask (mask float32 0..1)."""
    m = (mask * alpha)[..., None]
    img *= 1.0 - m
    img += m * np.asarray(color, dtype=np.float32)


def _soft_ellipse_mask(
    w: int, h: int, c: tuple[float, float], axes: tuple[float, float], angle: float, blur: float
) -> np.ndarray:
    mask: np.ndarray = np.zeros((h, w), dtype=np.float32)
    _ellipse(mask, c, axes, angle, (1.0,))
    if blur > 0:
        k = int(blur * 3) * 2 + 1
        mask = cv2.GaussianBlur(mask, (k, k), blur)
    return mask


def render_face(
    identity: FaceIdentity,
    expression: Expression,
    talk: float = 0.0,
    pose: FacePose | None = None,
    rng: np.random.Generator | None = None,
    size: tuple[int, int] = DEFAULT_FRAME_SIZE,
    blink: float = 0.0,
) -> np.ndarray:
    """Render one BGR ``uint8`` frame of ``size`` = (width, height).

    ``talk`` (0..1) opens the mouth on top of the expression's resting opening
    (driven by the audio envelope); ``blink`` (0..1) closes the eyes.  ``rng``
    supplies pixel noise; without it no noise is added.  The static part of the
    face (everything but the mouth) is cached, so rendering a video of one
    identity/expression is cheap.
    """
    w, h = int(size[0]), int(size[1])
    pose = pose or FacePose(noise_std=0.0)
    blink_q = round(float(np.clip(blink, 0.0, 1.0)) * 4.0) / 4.0
    img = _render_base(identity, expression, blink_q, w, h).copy()
    _draw_mouth(img, identity, expression, float(talk), w, h)
    cx, cy = w / 2.0, h * 0.52

    # ---- pose: roll / shift / scale ----
    if pose.roll_deg != 0.0 or pose.shift_x != 0.0 or pose.shift_y != 0.0 or pose.scale != 1.0:
        mat = cv2.getRotationMatrix2D((cx, cy), pose.roll_deg, pose.scale)
        mat[0, 2] += pose.shift_x * w
        mat[1, 2] += pose.shift_y * h
        img = cv2.warpAffine(img, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    # ---- lighting gradient, brightness, camera blur, noise ----
    if pose.light_strength > 0.0 or pose.brightness != 1.0:
        gain = _gain_map(w, h, round(pose.light_angle, 3), round(pose.light_strength, 3), round(pose.brightness, 3))
        img *= gain
    img = cv2.GaussianBlur(img, (3, 3), 0.7)
    if rng is not None and pose.noise_std > 0.0:
        noise = rng.standard_normal(size=img.shape, dtype=np.float32)
        noise *= np.float32(pose.noise_std)
        img += noise
    np.clip(img, 0.0, 255.0, out=img)
    out: np.ndarray = img.astype(np.uint8)
    return out


@lru_cache(maxsize=16)
def _gain_map(w: int, h: int, angle: float, strength: float, brightness: float) -> np.ndarray:
    xs, ys = _grids(w, h)
    d = (xs - w / 2) * math.cos(angle) + (ys - h / 2) * math.sin(angle)
    gain = (1.0 + strength * d / (0.5 * max(w, h))) * brightness
    out = np.ascontiguousarray(gain[..., None].astype(np.float32))
    out.flags.writeable = False
    return out


@lru_cache(maxsize=32)
def _render_base(identity: FaceIdentity, expression: Expression, blink: float, w: int, h: int) -> np.ndarray:
    """Everything except the mouth, as a float32 BGR image (cached, read-only)."""
    ident = identity
    ex = expression
    u = float(h)  # unit length

    img = np.empty((h, w, 3), dtype=np.float32)
    xs, ys = _grids(w, h)
    # background: vertical gradient of the identity colour
    bg = np.asarray(ident.background_bgr, dtype=np.float32)
    grad = (0.85 + 0.3 * (ys / h))[..., None]
    img[:] = bg * grad

    cx, cy = w / 2.0, h * 0.52
    fa, fb = ident.face_w * u, ident.face_h * u
    skin = ident.skin_bgr
    hair = ident.hair_bgr

    # shoulders / shirt
    _ellipse(img, (cx, cy + fb * 2.05), (fa * 2.4, fb * 0.9), 0.0, ident.shirt_bgr)
    # neck (a bit darker than face)
    neck = np.array(
        [
            [cx - fa * 0.5, cy + fb * 0.5],
            [cx + fa * 0.5, cy + fb * 0.5],
            [cx + fa * 0.55, cy + fb * 1.4],
            [cx - fa * 0.55, cy + fb * 1.4],
        ]
    )
    _poly(img, neck, _scaled(skin, 0.72))

    # hair behind the head
    if ident.hair_style == 1:  # long hair
        _ellipse(img, (cx, cy + fb * 0.1), (fa * 1.3, fb * 1.25), 0.0, hair)
        _poly(
            img,
            np.array(
                [
                    [cx - fa * 1.3, cy],
                    [cx + fa * 1.3, cy],
                    [cx + fa * 1.25, cy + fb * 1.2],
                    [cx - fa * 1.25, cy + fb * 1.2],
                ]
            ),
            hair,
        )
    elif ident.hair_style in (0, 3):
        _ellipse(img, (cx, cy - fb * 0.22), (fa * 1.12, fb * 0.95), 0.0, hair)
    else:  # receding: only at sides
        _ellipse(img, (cx, cy - fb * 0.1), (fa * 1.08, fb * 0.8), 0.0, hair)

    # ears
    for sgn in (-1.0, 1.0):
        _ellipse(img, (cx + sgn * fa * 0.98, cy - fb * 0.05), (fa * 0.14, fb * 0.2), 0.0, _scaled(skin, 0.85))

    # face: skin ellipse with radial shading
    face_mask = _soft_ellipse_mask(w, h, (cx, cy), (fa, fb), 0.0, 1.0)
    r2 = ((xs - cx) / fa) ** 2 + ((ys - (cy - fb * 0.15)) / (fb * 1.1)) ** 2
    shade = np.clip(1.08 - 0.32 * r2, 0.55, 1.1)
    skin_arr = np.asarray(skin, dtype=np.float32)
    face_col = skin_arr * shade[..., None]
    m = face_mask[..., None]
    img *= 1.0 - m
    img += m * face_col

    # hair on top of the forehead
    if ident.hair_style == 0:
        _ellipse(img, (cx, cy - fb * 0.86), (fa * 1.0, fb * 0.3), 0.0, hair, -1, 180.0, 360.0)
        _ellipse(img, (cx, cy - fb * 0.86), (fa * 1.0, fb * 0.1), 0.0, hair)
    elif ident.hair_style == 1:
        _ellipse(img, (cx - fa * 0.2, cy - fb * 0.84), (fa * 0.95, fb * 0.3), 8.0, hair, -1, 180.0, 360.0)
        _ellipse(img, (cx - fa * 0.2, cy - fb * 0.84), (fa * 0.95, fb * 0.12), 8.0, hair)
    elif ident.hair_style == 3:  # fringe
        _ellipse(img, (cx, cy - fb * 0.8), (fa * 0.98, fb * 0.32), 0.0, hair, -1, 180.0, 360.0)
        _ellipse(img, (cx, cy - fb * 0.8), (fa * 0.98, fb * 0.14), 0.0, hair, -1, 0.0, 180.0)

    # chin / jaw shadow
    chin = _soft_ellipse_mask(w, h, (cx, cy + fb * 0.92), (fa * 0.55, fb * 0.16), 0.0, 3.0 * u / 240)
    _blend_mask(img, chin * face_mask, _scaled(skin, 0.55), 0.6)

    # ---- eyes ----
    eye_y = cy - fb * 0.12
    ex_off = fa * ident.eye_spacing
    ew = fa * ident.eye_size
    eh_base = ew * 0.42
    openness = float(np.clip(ex.eye_open * (1.0 - blink), 0.05, 1.8))
    # dark eye sockets (shadows): key Haar cue
    sock: np.ndarray = np.zeros((h, w), dtype=np.float32)
    for sgn in (-1.0, 1.0):
        lift = max(0.0, ex.brow_raise) * ew * 0.3
        _ellipse(sock, (cx + sgn * ex_off, eye_y - ew * 0.12 - lift), (ew * 1.5, ew * 0.95 + lift), 0.0, (1.0,))
    kb = int(4 * u / 240) * 2 + 1
    sock = cv2.GaussianBlur(sock, (kb, kb), 0)
    _blend_mask(img, sock, _scaled(skin, 0.4), 0.65)

    for sgn in (-1.0, 1.0):
        ec = (cx + sgn * ex_off, eye_y)
        eh = eh_base * openness
        _ellipse(img, ec, (ew, max(eh, 0.6)), 0.0, (190.0, 196.0, 202.0))
        if eh > 1.0:
            ir = min(ew * 0.58, eh * 1.05)
            _ellipse(img, ec, (ew * 0.58, ir), 0.0, ident.iris_bgr)
            _ellipse(img, ec, (ew * 0.22, min(ir, ew * 0.22)), 0.0, (15.0, 15.0, 15.0))
        # upper lid line
        _ellipse(img, ec, (ew * 1.02, max(eh, 0.8)), 0.0, (30.0, 30.0, 35.0), max(1, int(u / 120)), 180.0, 360.0)
        # cheek raise (smile) pushes lower lid up
        if ex.cheek_raise > 0.05:
            _ellipse(
                img,
                (ec[0], ec[1] + eh * 1.1 + ew * 0.25),
                (ew * 1.1, ew * 0.35 * ex.cheek_raise + 0.5),
                0.0,
                _scaled(skin, 0.95),
                -1,
                180.0,
                360.0,
            )

    # ---- brows ----
    brow_y = eye_y - ew * 0.95 - ex.brow_raise * ew * 0.38
    bthick = max(2.0, ew * 0.28)
    # brows are always clearly darker than skin (light hair -> darker brows)
    brow_col = (
        min(hair[0] * 0.6, 40.0 + 0.15 * hair[0]),
        min(hair[1] * 0.6, 40.0 + 0.15 * hair[1]),
        min(hair[2] * 0.6, 40.0 + 0.15 * hair[2]),
    )
    for sgn in (-1.0, 1.0):
        inner_x = cx + sgn * (ex_off - ew * 1.05)
        outer_x = cx + sgn * (ex_off + ew * 1.15)
        inner_y = brow_y + ex.brow_angle * ew * 0.45
        outer_y = brow_y - ex.brow_angle * ew * 0.15
        mid_x = 0.5 * (inner_x + outer_x)
        mid_y = 0.5 * (inner_y + outer_y) - ew * 0.18
        ts = np.linspace(0.0, 1.0, 9)
        bx = (1 - ts) ** 2 * inner_x + 2 * (1 - ts) * ts * mid_x + ts**2 * outer_x
        by = (1 - ts) ** 2 * inner_y + 2 * (1 - ts) * ts * mid_y + ts**2 * outer_y
        thick = bthick * (1.0 - 0.35 * ts)
        top = np.stack([bx, by - thick / 2], axis=1)
        bot = np.stack([bx, by + thick / 2], axis=1)[::-1]
        _poly(img, np.concatenate([top, bot]), brow_col)
    # vertical frown lines between brows when lowered
    if ex.brow_angle > 0.4:
        for sgn in (-1.0, 1.0):
            x0 = cx + sgn * ew * 0.22
            _polyline(
                img,
                np.array([[x0, brow_y + ew * 0.1], [x0 + sgn * ew * 0.05, brow_y + ew * 0.55]]),
                _scaled(skin, 0.6),
                1,
            )

    # ---- nose ----
    nose_top = eye_y - ew * 0.2
    nose_tip = cy + fb * 0.22
    bridge = _soft_ellipse_mask(
        w, h, (cx, (nose_top + nose_tip) / 2), (ew * 0.32, (nose_tip - nose_top) / 2), 0.0, 2.0 * u / 240
    )
    _blend_mask(
        img,
        bridge,
        (min(255.0, skin[0] * 1.25 + 15), min(255.0, skin[1] * 1.2 + 15), min(255.0, skin[2] * 1.15 + 15)),
        0.6,
    )
    # nose side shadows
    for sgn in (-1.0, 1.0):
        _polyline(
            img,
            np.array([[cx + sgn * ew * 0.38, nose_top + ew * 0.6], [cx + sgn * ew * 0.5, nose_tip - ew * 0.2]]),
            _scaled(skin, 0.75),
            max(1, int(u / 160)),
        )
    # nostrils / tip shadow
    _ellipse(img, (cx, nose_tip + ew * 0.08), (ew * 0.55, ew * 0.16), 0.0, _scaled(skin, 0.62))
    for sgn in (-1.0, 1.0):
        _ellipse(img, (cx + sgn * ew * 0.25, nose_tip + ew * 0.1), (ew * 0.13, ew * 0.07), 0.0, _scaled(skin, 0.35))
    if ex.nose_wrinkle > 0.05:
        for k in range(2 + int(ex.nose_wrinkle * 2.5)):
            yy = nose_top + ew * (0.55 + 0.22 * k)
            _polyline(
                img,
                np.array([[cx - ew * 0.3, yy + ew * 0.06], [cx, yy], [cx + ew * 0.3, yy + ew * 0.06]]),
                _scaled(skin, 1.0 - 0.35 * ex.nose_wrinkle),
                1,
            )

    mw = fa * 0.42 * ex.mouth_width
    mouth_y = cy + fb * 0.5
    # smile lines
    if ex.mouth_curve > 0.4:
        for sgn in (-1.0, 1.0):
            _polyline(
                img,
                np.array(
                    [
                        [cx + sgn * (mw + ew * 0.35), mouth_y - ew * 0.9],
                        [cx + sgn * (mw + ew * 0.5), mouth_y - ew * 0.2],
                        [cx + sgn * (mw + ew * 0.3), mouth_y + ew * 0.35],
                    ]
                ),
                _scaled(skin, 0.72),
                1,
            )

    # ---- glasses ----
    if ident.glasses:
        gcol = (25.0, 25.0, 25.0)
        gt = max(1, int(u / 110))
        for sgn in (-1.0, 1.0):
            _ellipse(img, (cx + sgn * ex_off, eye_y), (ew * 1.35, ew * 0.95), 0.0, gcol, gt)
        _polyline(
            img,
            np.array([[cx - ex_off + ew * 1.35, eye_y - ew * 0.2], [cx + ex_off - ew * 1.35, eye_y - ew * 0.2]]),
            gcol,
            gt,
        )

    img.flags.writeable = False
    return img


def _draw_mouth(img: np.ndarray, ident: FaceIdentity, ex: Expression, talk: float, w: int, h: int) -> None:
    u = float(h)
    cx, cy = w / 2.0, h * 0.52
    fa, fb = ident.face_w * u, ident.face_h * u
    # ---- mouth ----
    mouth_y = cy + fb * 0.5
    mw = fa * 0.42 * ex.mouth_width
    curve = ex.mouth_curve * mw * 0.28
    opening = float(np.clip(ex.mouth_open + 0.9 * talk, 0.0, 1.2)) * fb * 0.16
    lip_up = ex.upper_lip_raise * fb * 0.05
    n = 15
    t = np.linspace(-1.0, 1.0, n)
    mx = cx + t * mw
    # corners at curve, centre at 0: smile -> corners up
    base_y = mouth_y - curve * (t**2) + curve * 0.3
    # asymmetric upper-lip raise (disgust sneer, left side more)
    sneer = lip_up * (1.0 + 0.6 * np.clip(-t, 0.0, 1.0)) * (1.0 - t**2)
    upper_inner = base_y - opening * 0.35 * (1.0 - t**2) - sneer
    lower_inner = base_y + opening * 0.65 * (1.0 - t**2)
    lip_th = fb * 0.05
    upper_outer = upper_inner - lip_th * (1.0 - 0.7 * t**2) - 0.5
    lower_outer = lower_inner + lip_th * 1.2 * (1.0 - 0.7 * t**2) + 0.5
    lips = np.concatenate([np.stack([mx, upper_outer], 1), np.stack([mx, lower_outer], 1)[::-1]])
    _poly(img, lips, ident.lip_bgr)
    if opening > 0.8:
        inner = np.concatenate([np.stack([mx, upper_inner], 1), np.stack([mx, lower_inner], 1)[::-1]])
        _poly(img, inner, (25.0, 20.0, 45.0))
        if opening > 2.5:
            teeth_h = min(opening * 0.3, fb * 0.03)
            teeth = np.concatenate(
                [np.stack([mx[3:-3], upper_inner[3:-3]], 1), np.stack([mx[3:-3], upper_inner[3:-3] + teeth_h], 1)[::-1]]
            )
            _poly(img, teeth, (215.0, 225.0, 230.0))
    else:
        _polyline(img, np.stack([mx, base_y], 1), _scaled(ident.lip_bgr, 0.5), max(1, int(u / 160)))


# --------------------------------------------------------------------------
# Haar detection helpers
# --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"could not load Haar cascade from {path}")
    return cascade


def haar_detect(frame: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Detect faces with the stock frontal-face Haar cascade (x, y, w, h boxes)."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    boxes = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
    return [(int(b[0]), int(b[1]), int(b[2]), int(b[3])) for b in boxes]


@dataclass(frozen=True)
class HaarStats:
    """Result of :func:`haar_detection_rate`."""

    n_frames: int
    n_detected: int
    per_label: dict[str, float]

    @property
    def rate(self) -> float:
        return self.n_detected / self.n_frames if self.n_frames else 0.0


def haar_detection_rate(
    n_identities: int = 6,
    frames_per_label: int = 10,
    seed: int = 0,
    size: tuple[int, int] = DEFAULT_FRAME_SIZE,
) -> HaarStats:
    """Render random faces for every label and measure Haar detection."""
    rng = np.random.default_rng(seed)
    total = 0
    hits = 0
    per_label: dict[str, float] = {}
    idents = [random_identity(rng) for _ in range(n_identities)]
    for label in _LABELS:
        lab_hits = 0
        lab_total = 0
        for ident in idents:
            for _ in range(frames_per_label):
                expr = sample_expression(label, rng)
                frame = render_face(
                    ident, expr, talk=float(rng.uniform(0, 1)), pose=sample_pose(rng), rng=rng, size=size, blink=0.0
                )
                ok = len(haar_detect(frame)) > 0
                lab_hits += int(ok)
                lab_total += 1
        per_label[label] = lab_hits / lab_total
        hits += lab_hits
        total += lab_total
    return HaarStats(n_frames=total, n_detected=hits, per_label=per_label)
