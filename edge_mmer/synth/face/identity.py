"""Who the synthetic speaker is and how the camera sees them: identity, pose, blinks.

Identity (per speaker) controls skin tone, face shape, eye spacing, hair and glasses; a pose (per
frame, random-walked for coherent video) shifts, rolls, scales and lights the face. Everything is
deterministic given a :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Blinker", "FaceIdentity", "FacePose", "random_identity", "sample_pose", "smooth_pose"]


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
