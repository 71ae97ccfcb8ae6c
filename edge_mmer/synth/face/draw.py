"""Drawing primitives of the face renderer: anti-aliased sub-pixel shapes and soft masks (OpenCV).

Coordinates are floats in pixels; shapes are drawn with OpenCV's fixed-point ``shift`` so that a
face moves smoothly by fractions of a pixel. Images are float32 BGR, masks float32 0..1.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

__all__ = ["blend_mask", "ellipse", "grids", "poly", "polyline", "scaled", "soft_ellipse_mask"]

_SS = 4  # fixed-point shift for sub-pixel drawing
_SSF = float(1 << _SS)


def _pt(x: float, y: float) -> tuple[int, int]:
    return (round(x * _SSF), round(y * _SSF))


def _ax(a: float, b: float) -> tuple[int, int]:
    return (max(1, round(a * _SSF)), max(1, round(b * _SSF)))


def ellipse(
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


def poly(img: np.ndarray, pts: np.ndarray, color: tuple[float, ...]) -> None:
    p = np.round(pts * _SSF).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(img, [p], color, cv2.LINE_AA, _SS)


def polyline(img: np.ndarray, pts: np.ndarray, color: tuple[float, ...], thickness: int) -> None:
    p = np.round(pts * _SSF).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(img, [p], False, color, thickness, cv2.LINE_AA, _SS)


def scaled(c: tuple[float, float, float], k: float) -> tuple[float, float, float]:
    """A colour times ``k`` (darker below 1)."""
    return (c[0] * k, c[1] * k, c[2] * k)


@lru_cache(maxsize=8)
def grids(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x and y coordinate grids of a (h, w) image (cached)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def blend_mask(img: np.ndarray, mask: np.ndarray, color: tuple[float, float, float], alpha: float) -> None:
    """In place: img = img*(1-a*mask) + color*a*mask (mask float32 0..1)."""
    m = (mask * alpha)[..., None]
    img *= 1.0 - m
    img += m * np.asarray(color, dtype=np.float32)


def soft_ellipse_mask(
    w: int, h: int, c: tuple[float, float], axes: tuple[float, float], angle: float, blur: float
) -> np.ndarray:
    mask: np.ndarray = np.zeros((h, w), dtype=np.float32)
    ellipse(mask, c, axes, angle, (1.0,))
    if blur > 0:
        k = int(blur * 3) * 2 + 1
        mask = cv2.GaussianBlur(mask, (k, k), blur)
    return mask
