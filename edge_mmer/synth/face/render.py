"""Rendering one frame of a synthetic talking face (OpenCV + numpy).

Faces are drawn so that OpenCV's stock Haar cascade (``haarcascade_frontalface_default.xml``) detects
them: a shaded skin ellipse, dark eye sockets and brows, a bright nose bridge, lips and a chin shadow.
The static part (everything but the mouth) is drawn by :func:`_render_base` as a sequence of named
steps, back to front, and cached per identity / expression / blink, so a video of one face is cheap;
the mouth, the pose, the lighting and the noise are applied per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edge_mmer.synth.face.draw import blend_mask, ellipse, grids, poly, polyline, scaled, soft_ellipse_mask
from edge_mmer.synth.face.expressions import Expression
from edge_mmer.synth.face.identity import FaceIdentity, FacePose

__all__ = ["DEFAULT_FRAME_SIZE", "render_face"]

#: Default (width, height) of rendered frames.
DEFAULT_FRAME_SIZE: tuple[int, int] = (320, 240)


@dataclass(frozen=True)
class _Layout:
    """Where the face sits in a (w, h) frame: the unit length ``u`` (the frame height), the face
    centre and half axes, and the eye line, eye offset from the midline and eye half-width."""

    w: int
    h: int
    u: float
    cx: float
    cy: float
    fa: float
    fb: float
    eye_y: float
    ex_off: float
    ew: float

    @classmethod
    def of(cls, ident: FaceIdentity, w: int, h: int) -> _Layout:
        u = float(h)
        cx, cy = w / 2.0, h * 0.52
        fa, fb = ident.face_w * u, ident.face_h * u
        return cls(w=w, h=h, u=u, cx=cx, cy=cy, fa=fa, fb=fb, eye_y=cy - fb * 0.12, ex_off=fa * ident.eye_spacing,
                   ew=fa * ident.eye_size)


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
    xs, ys = grids(w, h)
    d = (xs - w / 2) * math.cos(angle) + (ys - h / 2) * math.sin(angle)
    gain = (1.0 + strength * d / (0.5 * max(w, h))) * brightness
    out = np.ascontiguousarray(gain[..., None].astype(np.float32))
    out.flags.writeable = False
    return out


# ------------------------------------------------------------------- the static face, step by step


def _draw_background(img: np.ndarray, ident: FaceIdentity, lay: _Layout) -> None:
    """A vertical gradient of the identity's background colour."""
    _, ys = grids(lay.w, lay.h)
    bg = np.asarray(ident.background_bgr, dtype=np.float32)
    grad = (0.85 + 0.3 * (ys / lay.h))[..., None]
    img[:] = bg * grad


def _draw_body(img: np.ndarray, ident: FaceIdentity, lay: _Layout) -> None:
    """Shoulders (the shirt) and the neck, a bit darker than the face."""
    cx, cy, fa, fb = lay.cx, lay.cy, lay.fa, lay.fb
    ellipse(img, (cx, cy + fb * 2.05), (fa * 2.4, fb * 0.9), 0.0, ident.shirt_bgr)
    neck = np.array(
        [
            [cx - fa * 0.5, cy + fb * 0.5],
            [cx + fa * 0.5, cy + fb * 0.5],
            [cx + fa * 0.55, cy + fb * 1.4],
            [cx - fa * 0.55, cy + fb * 1.4],
        ]
    )
    poly(img, neck, scaled(ident.skin_bgr, 0.72))


def _draw_hair_behind(img: np.ndarray, ident: FaceIdentity, lay: _Layout) -> None:
    """The hair behind the head: long, short / fringe, or receding (only at the sides)."""
    cx, cy, fa, fb, hair = lay.cx, lay.cy, lay.fa, lay.fb, ident.hair_bgr
    if ident.hair_style == 1:  # long hair
        ellipse(img, (cx, cy + fb * 0.1), (fa * 1.3, fb * 1.25), 0.0, hair)
        poly(
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
        ellipse(img, (cx, cy - fb * 0.22), (fa * 1.12, fb * 0.95), 0.0, hair)
    else:  # receding: only at sides
        ellipse(img, (cx, cy - fb * 0.1), (fa * 1.08, fb * 0.8), 0.0, hair)


def _draw_ears(img: np.ndarray, ident: FaceIdentity, lay: _Layout) -> None:
    for sgn in (-1.0, 1.0):
        ellipse(img, (lay.cx + sgn * lay.fa * 0.98, lay.cy - lay.fb * 0.05), (lay.fa * 0.14, lay.fb * 0.2), 0.0,
                scaled(ident.skin_bgr, 0.85))


def _draw_skin(img: np.ndarray, ident: FaceIdentity, lay: _Layout) -> np.ndarray:
    """The face: a skin ellipse with radial shading. Returns its soft mask (the chin shadow uses it)."""
    cx, cy, fa, fb = lay.cx, lay.cy, lay.fa, lay.fb
    xs, ys = grids(lay.w, lay.h)
    face_mask = soft_ellipse_mask(lay.w, lay.h, (cx, cy), (fa, fb), 0.0, 1.0)
    r2 = ((xs - cx) / fa) ** 2 + ((ys - (cy - fb * 0.15)) / (fb * 1.1)) ** 2
    shade = np.clip(1.08 - 0.32 * r2, 0.55, 1.1)
    skin_arr = np.asarray(ident.skin_bgr, dtype=np.float32)
    face_col = skin_arr * shade[..., None]
    m = face_mask[..., None]
    img *= 1.0 - m
    img += m * face_col
    return face_mask


def _draw_hair_front(img: np.ndarray, ident: FaceIdentity, lay: _Layout) -> None:
    """The hair on top of the forehead (none for the receding style)."""
    cx, cy, fa, fb, hair = lay.cx, lay.cy, lay.fa, lay.fb, ident.hair_bgr
    if ident.hair_style == 0:
        ellipse(img, (cx, cy - fb * 0.86), (fa * 1.0, fb * 0.3), 0.0, hair, -1, 180.0, 360.0)
        ellipse(img, (cx, cy - fb * 0.86), (fa * 1.0, fb * 0.1), 0.0, hair)
    elif ident.hair_style == 1:
        ellipse(img, (cx - fa * 0.2, cy - fb * 0.84), (fa * 0.95, fb * 0.3), 8.0, hair, -1, 180.0, 360.0)
        ellipse(img, (cx - fa * 0.2, cy - fb * 0.84), (fa * 0.95, fb * 0.12), 8.0, hair)
    elif ident.hair_style == 3:  # fringe
        ellipse(img, (cx, cy - fb * 0.8), (fa * 0.98, fb * 0.32), 0.0, hair, -1, 180.0, 360.0)
        ellipse(img, (cx, cy - fb * 0.8), (fa * 0.98, fb * 0.14), 0.0, hair, -1, 0.0, 180.0)


def _draw_chin_shadow(img: np.ndarray, ident: FaceIdentity, lay: _Layout, face_mask: np.ndarray) -> None:
    chin = soft_ellipse_mask(lay.w, lay.h, (lay.cx, lay.cy + lay.fb * 0.92), (lay.fa * 0.55, lay.fb * 0.16), 0.0,
                             3.0 * lay.u / 240)
    blend_mask(img, chin * face_mask, scaled(ident.skin_bgr, 0.55), 0.6)


def _draw_eye_sockets(img: np.ndarray, ident: FaceIdentity, ex: Expression, lay: _Layout) -> None:
    """Dark, blurred eye sockets (shadows): the key Haar cue."""
    ew = lay.ew
    sock: np.ndarray = np.zeros((lay.h, lay.w), dtype=np.float32)
    for sgn in (-1.0, 1.0):
        lift = max(0.0, ex.brow_raise) * ew * 0.3
        ellipse(sock, (lay.cx + sgn * lay.ex_off, lay.eye_y - ew * 0.12 - lift), (ew * 1.5, ew * 0.95 + lift), 0.0,
                (1.0,))
    kb = int(4 * lay.u / 240) * 2 + 1
    sock = cv2.GaussianBlur(sock, (kb, kb), 0)
    blend_mask(img, sock, scaled(ident.skin_bgr, 0.4), 0.65)


def _draw_eyes(img: np.ndarray, ident: FaceIdentity, ex: Expression, lay: _Layout, blink: float) -> None:
    """Eye whites, irises and pupils (when open enough), the upper lid line, and the lower lid pushed
    up by raised cheeks (smile)."""
    ew, u = lay.ew, lay.u
    eh_base = ew * 0.42
    openness = float(np.clip(ex.eye_open * (1.0 - blink), 0.05, 1.8))
    for sgn in (-1.0, 1.0):
        ec = (lay.cx + sgn * lay.ex_off, lay.eye_y)
        eh = eh_base * openness
        ellipse(img, ec, (ew, max(eh, 0.6)), 0.0, (190.0, 196.0, 202.0))
        if eh > 1.0:
            ir = min(ew * 0.58, eh * 1.05)
            ellipse(img, ec, (ew * 0.58, ir), 0.0, ident.iris_bgr)
            ellipse(img, ec, (ew * 0.22, min(ir, ew * 0.22)), 0.0, (15.0, 15.0, 15.0))
        ellipse(img, ec, (ew * 1.02, max(eh, 0.8)), 0.0, (30.0, 30.0, 35.0), max(1, int(u / 120)), 180.0, 360.0)
        if ex.cheek_raise > 0.05:
            ellipse(
                img,
                (ec[0], ec[1] + eh * 1.1 + ew * 0.25),
                (ew * 1.1, ew * 0.35 * ex.cheek_raise + 0.5),
                0.0,
                scaled(ident.skin_bgr, 0.95),
                -1,
                180.0,
                360.0,
            )


def _draw_brows(img: np.ndarray, ident: FaceIdentity, ex: Expression, lay: _Layout) -> None:
    """Brows (always clearly darker than the skin: light hair gets darker brows), and vertical frown
    lines between them when they are lowered."""
    cx, ew, hair = lay.cx, lay.ew, ident.hair_bgr
    brow_y = lay.eye_y - ew * 0.95 - ex.brow_raise * ew * 0.38
    bthick = max(2.0, ew * 0.28)
    brow_col = (
        min(hair[0] * 0.6, 40.0 + 0.15 * hair[0]),
        min(hair[1] * 0.6, 40.0 + 0.15 * hair[1]),
        min(hair[2] * 0.6, 40.0 + 0.15 * hair[2]),
    )
    for sgn in (-1.0, 1.0):
        inner_x = cx + sgn * (lay.ex_off - ew * 1.05)
        outer_x = cx + sgn * (lay.ex_off + ew * 1.15)
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
        poly(img, np.concatenate([top, bot]), brow_col)
    if ex.brow_angle > 0.4:
        for sgn in (-1.0, 1.0):
            x0 = cx + sgn * ew * 0.22
            polyline(
                img,
                np.array([[x0, brow_y + ew * 0.1], [x0 + sgn * ew * 0.05, brow_y + ew * 0.55]]),
                scaled(ident.skin_bgr, 0.6),
                1,
            )


def _draw_nose(img: np.ndarray, ident: FaceIdentity, ex: Expression, lay: _Layout) -> None:
    """A bright bridge, side shadows, the tip shadow and nostrils, and wrinkles (disgust, anger)."""
    cx, ew, u, skin = lay.cx, lay.ew, lay.u, ident.skin_bgr
    nose_top = lay.eye_y - ew * 0.2
    nose_tip = lay.cy + lay.fb * 0.22
    bridge = soft_ellipse_mask(
        lay.w, lay.h, (cx, (nose_top + nose_tip) / 2), (ew * 0.32, (nose_tip - nose_top) / 2), 0.0, 2.0 * u / 240
    )
    blend_mask(
        img,
        bridge,
        (min(255.0, skin[0] * 1.25 + 15), min(255.0, skin[1] * 1.2 + 15), min(255.0, skin[2] * 1.15 + 15)),
        0.6,
    )
    for sgn in (-1.0, 1.0):
        polyline(
            img,
            np.array([[cx + sgn * ew * 0.38, nose_top + ew * 0.6], [cx + sgn * ew * 0.5, nose_tip - ew * 0.2]]),
            scaled(skin, 0.75),
            max(1, int(u / 160)),
        )
    ellipse(img, (cx, nose_tip + ew * 0.08), (ew * 0.55, ew * 0.16), 0.0, scaled(skin, 0.62))
    for sgn in (-1.0, 1.0):
        ellipse(img, (cx + sgn * ew * 0.25, nose_tip + ew * 0.1), (ew * 0.13, ew * 0.07), 0.0, scaled(skin, 0.35))
    if ex.nose_wrinkle > 0.05:
        for k in range(2 + int(ex.nose_wrinkle * 2.5)):
            yy = nose_top + ew * (0.55 + 0.22 * k)
            polyline(
                img,
                np.array([[cx - ew * 0.3, yy + ew * 0.06], [cx, yy], [cx + ew * 0.3, yy + ew * 0.06]]),
                scaled(skin, 1.0 - 0.35 * ex.nose_wrinkle),
                1,
            )


def _draw_smile_lines(img: np.ndarray, ident: FaceIdentity, ex: Expression, lay: _Layout) -> None:
    cx, ew = lay.cx, lay.ew
    mw = lay.fa * 0.42 * ex.mouth_width
    mouth_y = lay.cy + lay.fb * 0.5
    if ex.mouth_curve > 0.4:
        for sgn in (-1.0, 1.0):
            polyline(
                img,
                np.array(
                    [
                        [cx + sgn * (mw + ew * 0.35), mouth_y - ew * 0.9],
                        [cx + sgn * (mw + ew * 0.5), mouth_y - ew * 0.2],
                        [cx + sgn * (mw + ew * 0.3), mouth_y + ew * 0.35],
                    ]
                ),
                scaled(ident.skin_bgr, 0.72),
                1,
            )


def _draw_glasses(img: np.ndarray, ident: FaceIdentity, lay: _Layout) -> None:
    if not ident.glasses:
        return
    cx, ew, eye_y, ex_off = lay.cx, lay.ew, lay.eye_y, lay.ex_off
    gcol = (25.0, 25.0, 25.0)
    gt = max(1, int(lay.u / 110))
    for sgn in (-1.0, 1.0):
        ellipse(img, (cx + sgn * ex_off, eye_y), (ew * 1.35, ew * 0.95), 0.0, gcol, gt)
    polyline(
        img,
        np.array([[cx - ex_off + ew * 1.35, eye_y - ew * 0.2], [cx + ex_off - ew * 1.35, eye_y - ew * 0.2]]),
        gcol,
        gt,
    )


@lru_cache(maxsize=32)
def _render_base(identity: FaceIdentity, expression: Expression, blink: float, w: int, h: int) -> np.ndarray:
    """Everything except the mouth, as a float32 BGR image (cached, read-only), back to front."""
    lay = _Layout.of(identity, w, h)
    img = np.empty((h, w, 3), dtype=np.float32)
    _draw_background(img, identity, lay)
    _draw_body(img, identity, lay)
    _draw_hair_behind(img, identity, lay)
    _draw_ears(img, identity, lay)
    face_mask = _draw_skin(img, identity, lay)
    _draw_hair_front(img, identity, lay)
    _draw_chin_shadow(img, identity, lay, face_mask)
    _draw_eye_sockets(img, identity, expression, lay)
    _draw_eyes(img, identity, expression, lay, blink)
    _draw_brows(img, identity, expression, lay)
    _draw_nose(img, identity, expression, lay)
    _draw_smile_lines(img, identity, expression, lay)
    _draw_glasses(img, identity, lay)
    img.flags.writeable = False
    return img


def _draw_mouth(img: np.ndarray, ident: FaceIdentity, ex: Expression, talk: float, w: int, h: int) -> None:
    """Lips around an opening set by the expression and ``talk``; teeth when wide open; a lip line when
    closed. Drawn per frame on a copy of the cached base."""
    lay = _Layout.of(ident, w, h)
    u, cx, fa, fb = lay.u, lay.cx, lay.fa, lay.fb
    mouth_y = lay.cy + fb * 0.5
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
    poly(img, lips, ident.lip_bgr)
    if opening > 0.8:
        inner = np.concatenate([np.stack([mx, upper_inner], 1), np.stack([mx, lower_inner], 1)[::-1]])
        poly(img, inner, (25.0, 20.0, 45.0))
        if opening > 2.5:
            teeth_h = min(opening * 0.3, fb * 0.03)
            teeth = np.concatenate(
                [np.stack([mx[3:-3], upper_inner[3:-3]], 1), np.stack([mx[3:-3], upper_inner[3:-3] + teeth_h], 1)[::-1]]
            )
            poly(img, teeth, (215.0, 225.0, 230.0))
    else:
        polyline(img, np.stack([mx, base_y], 1), scaled(ident.lip_bgr, 0.5), max(1, int(u / 160)))
