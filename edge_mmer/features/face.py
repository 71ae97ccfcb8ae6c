"""Face front end: Haar detection, square crop, resize and normalise (OpenCV + numpy, no torch).

The same functions run at training time and on the device, so a crop seen by the face encoder at
training time is pixel-for-pixel what the runtime feeds it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge_mmer.config import FaceConfig

logger = logging.getLogger(__name__)

__all__ = [
    "FaceBox",
    "HaarFaceDetector",
    "crop_face",
    "crop_square",
    "largest_face",
    "preprocess_face",
    "preprocess_faces",
]

HAAR_CASCADE_FILE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class FaceBox:
    """An axis-aligned face box in pixel coordinates of the full frame."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h


def _default_cascade_path() -> str:
    data = getattr(cv2, "data", None)
    base = getattr(data, "haarcascades", "") if data is not None else ""
    return os.path.join(base, HAAR_CASCADE_FILE)


_FIND_NEIGHBOURS = 3  # the neighbours a face needs in HaarFaceDetector.find (detect: min_neighbors)


class HaarFaceDetector:
    """OpenCV's stock frontal-face Haar cascade.

    ``detect`` runs ``detectMultiScale(scaleFactor=1.1, minNeighbors=5, minSize=min_size)`` on a
    gray copy of the frame. When the frame's longer side exceeds ``max_side`` the gray copy is
    downscaled (``INTER_AREA``) to ``max_side`` for speed, ``min_size`` is scaled accordingly and the
    boxes are mapped back to full-frame coordinates. ``equalize`` applies histogram equalisation
    first (off by default, matching the synthetic data the demo trains on).
    """

    def __init__(
        self,
        min_size: tuple[int, int] = (40, 40),
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        max_side: int = 640,
        equalize: bool = False,
        cascade_path: str | None = None,
    ) -> None:
        if min_size[0] < 1 or min_size[1] < 1:
            raise ValueError(f"min_size must be positive, got {min_size}")
        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
        if max_side < 32:
            raise ValueError(f"max_side must be >= 32, got {max_side}")
        path = cascade_path if cascade_path is not None else _default_cascade_path()
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Haar cascade file not found: {path!r} (is opencv-python-headless installed with its data files?)"
            )
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise RuntimeError(f"OpenCV could not load the Haar cascade {path!r}")
        self.cascade_path = path
        self.min_size = (int(min_size[0]), int(min_size[1]))
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.max_side = int(max_side)
        self.equalize = bool(equalize)
        self._cascade = cascade

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        """Faces in a BGR (H, W, 3) or gray (H, W) ``uint8`` frame, in full-frame pixel coordinates."""
        frame = np.asarray(frame_bgr)
        if frame.dtype != np.uint8:
            raise ValueError(f"expected a uint8 frame, got dtype {frame.dtype}")
        if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 3)):
            raise ValueError(f"expected a BGR (H, W, 3) or gray (H, W) frame, got shape {frame.shape}")
        height, width = frame.shape[:2]
        if height == 0 or width == 0:
            raise ValueError(f"frame is empty (shape {frame.shape})")
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        scale = 1.0
        if max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        min_size = (max(1, round(self.min_size[0] * scale)), max(1, round(self.min_size[1] * scale)))
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=min_size
        )
        return _boxes_back(found, scale, width, height)

    def find(self, gray: np.ndarray, min_px: int, max_px: int | None = None,
             step: float | None = None) -> list[FaceBox]:
        """Faces ``min_px`` to ``max_px`` tall in a gray image, scanned as given (no downscaling).

        For a tracker that chooses the image's scale itself (a downscaled camera frame, a region
        around a known face): the pyramid ``step`` is this detector's ``scale_factor`` unless given
        (a larger one scans a whole frame faster, and misses more of the smallest faces), and a face
        needs only :data:`_FIND_NEIGHBOURS` neighbours, as faces at the bottom of the range have few."""
        if gray.dtype != np.uint8 or gray.ndim != 2 or min(gray.shape) == 0:
            raise ValueError(f"expected a non-empty gray uint8 (H, W) image, got {gray.dtype} {gray.shape}")
        lo = max(1, int(min_px))
        hi = max(lo, int(max_px)) if max_px is not None else 0
        found = self._cascade.detectMultiScale(
            cv2.equalizeHist(gray) if self.equalize else gray, scaleFactor=step or self.scale_factor,
            minNeighbors=_FIND_NEIGHBOURS, minSize=(lo, lo), maxSize=(hi, hi))
        return _boxes_back(found, 1.0, gray.shape[1], gray.shape[0])


def _boxes_back(found: object, scale: float, width: int, height: int) -> list[FaceBox]:
    """OpenCV's ``(x, y, w, h)`` rows of an image scaled by ``scale`` as boxes of the ``width`` x ``height`` frame."""
    boxes: list[FaceBox] = []
    for bx, by, bw, bh in np.asarray(found, dtype=np.int64).reshape(-1, 4):
        x0 = min(max(0, round(bx / scale)), width - 1)
        y0 = min(max(0, round(by / scale)), height - 1)
        x1 = min(width, max(x0 + 1, round((bx + bw) / scale)))
        y1 = min(height, max(y0 + 1, round((by + bh) / scale)))
        boxes.append(FaceBox(int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
    return boxes


def largest_face(boxes: Sequence[FaceBox]) -> FaceBox | None:
    """The box with the largest area (the first one on ties), or ``None`` for no boxes."""
    best: FaceBox | None = None
    for box in boxes:
        if best is None or box.area > best.area:
            best = box
    return best


def crop_square(box: FaceBox, margin: float) -> tuple[int, int, int]:
    """The square :func:`crop_face` cuts around ``box``: its top-left corner and side (may leave the frame)."""
    side = max(1, round(max(box.w, box.h) * (1.0 + 2.0 * margin)))
    return (2 * box.x + box.w - side) // 2, (2 * box.y + box.h - side) // 2, side


def crop_face(frame_bgr: np.ndarray, box: FaceBox, margin: float) -> np.ndarray:
    """Square crop centred on ``box``, side ``max(w, h) * (1 + 2 * margin)`` (rounded, >= 1).

    The top-left corner is ``((2x + w - side) // 2, (2y + h - side) // 2)`` (integer arithmetic).
    Parts of the square outside the frame are filled by edge replication, so the result is always
    ``(side, side[, C])``. Works on (H, W) and (H, W, C) frames; returns a new array.
    """
    frame = np.asarray(frame_bgr)
    if frame.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) frame, got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame is empty (shape {frame.shape})")
    if box.w <= 0 or box.h <= 0:
        raise ValueError(f"face box has zero size: {box}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    height, width = frame.shape[:2]
    x0, y0, side = crop_square(box, margin)
    x1, y1 = x0 + side, y0 + side
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(width, x1), min(height, y1)
    if cx0 >= cx1 or cy0 >= cy1:
        raise ValueError(f"face box {box} (crop side {side}) lies outside the {width}x{height} frame")
    inner = frame[cy0:cy1, cx0:cx1]
    pad = [(cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1)]
    if frame.ndim == 3:
        pad.append((0, 0))
    padded: np.ndarray = np.pad(inner, pad, mode="edge") if any(p for pair in pad for p in pair) else inner.copy()
    return padded


def resize_face(crop_bgr: np.ndarray, size: int) -> np.ndarray:
    """Resize a face crop to ``size`` x ``size`` (``INTER_AREA`` when shrinking both sides,
    ``INTER_LINEAR`` otherwise; non-square crops are stretched; no resize at the exact size).

    Keeps ``uint8``: a trainer can hold thousands of crops at a quarter of the float32 memory and
    normalise per batch with :func:`preprocess_faces` (which then skips the resize).
    """
    crop = np.asarray(crop_bgr)
    height, width = crop.shape[:2]
    if (height, width) == (size, size):
        return crop
    interp = cv2.INTER_AREA if (height >= size and width >= size) else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interp)


def preprocess_face(crop_bgr: np.ndarray, cfg: FaceConfig) -> np.ndarray:
    """One face crop to the encoder's input: float32 ``(3, crop_size, crop_size)``.

    Steps: resize to ``crop_size`` x ``crop_size`` (``INTER_AREA`` when shrinking both sides,
    ``INTER_LINEAR`` otherwise; non-square crops are stretched; no resize at the exact size);
    BGR -> RGB; if ``cfg.grayscale``, BGR -> gray (OpenCV weights) replicated to 3 channels;
    ``x / 255``; ``(x - mean[c]) / std[c]`` per RGB channel.

    ``crop_bgr`` must be ``uint8`` (H, W, 3) BGR or (H, W) gray (replicated to 3 channels).
    """
    crop = np.asarray(crop_bgr)
    if crop.dtype != np.uint8:
        raise ValueError(f"expected a uint8 face crop, got dtype {crop.dtype}")
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR) if crop.size else crop[..., None]
    elif crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"expected a BGR (H, W, 3) or gray (H, W) face crop, got shape {crop.shape}")
    if crop.shape[0] == 0 or crop.shape[1] == 0:
        raise ValueError(f"face crop has zero size (shape {crop.shape})")
    crop = resize_face(crop, cfg.crop_size)
    if cfg.grayscale:
        gray = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_BGR2GRAY)
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
    else:
        rgb = crop[:, :, ::-1]
    x = rgb.astype(np.float32) / np.float32(255.0)
    mean = np.asarray(cfg.mean, dtype=np.float32)
    std = np.asarray(cfg.std, dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def preprocess_faces(crops: Sequence[np.ndarray], cfg: FaceConfig) -> np.ndarray:
    """Batch of :func:`preprocess_face`: float32 ``(N, 3, crop_size, crop_size)``; ``N = 0`` for no crops."""
    size = cfg.crop_size
    if len(crops) == 0:
        return np.zeros((0, 3, size, size), dtype=np.float32)
    out = np.empty((len(crops), 3, size, size), dtype=np.float32)
    for i, crop in enumerate(crops):
        try:
            out[i] = preprocess_face(crop, cfg)
        except ValueError as exc:
            raise ValueError(f"face crop {i}: {exc}") from exc
    return out
