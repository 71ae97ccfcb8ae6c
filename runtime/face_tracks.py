"""Face boxes over time at camera resolution: downscaled detection, cheap following, stable track ids.

A full-frame detection at 1280x720 costs tens of milliseconds on a small CPU, so it runs on a copy
whose longer side is ``detect_max_side`` (boxes mapped back to full resolution for the crop), and
only on a fixed schedule of the stream clock: the first analysed frame of each ``redetect_interval_s``
slot. Between full detections each known face is followed by detecting in a small region around its
track, downscaled so the face is about :data:`ROI_FACE_PX` pixels tall, which costs a millisecond or
two. Which frames get which kind of detection depends only on their timestamps, so a file streamed
chunk by chunk gives the same boxes as the file read whole.

A frame no larger than ``detect_max_side`` is always detected whole: there the whole frame costs no
more than the regions (the demo clip's 320x240 frames are analysed exactly as at training time).

Tracks are associated by box overlap (IoU, greedy, largest overlap first) and live ``track_max_age_s``
without a detection. Track ids count up from 1 per stream and are never reused.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from edge_mmer.features.face import FaceBox
from edge_mmer.runtime.chunks import VideoFrame

log = logging.getLogger(__name__)

ROI_FACE_PX = 56  # the face height a region is downscaled to before following detection (a few ms of Haar)
_ROI_GROW = 0.5  # the region: the track's box grown by this fraction of its size on every side
_MAX_ROI_TRACKS = 6  # more tracks than this: a full detection is cheaper than the regions


class Detector(Protocol):
    """What the tracker needs of a face detector (Haar, YuNet): boxes in the given image's pixels."""

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]: ...


@dataclass
class Track:
    """One face followed over time."""

    id: int
    box: FaceBox
    last_seen: float
    first_seen: float
    hits: int = 1


def iou(a: FaceBox, b: FaceBox) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def scale_box(box: FaceBox, s: float, dx: int, dy: int, w: int, h: int) -> FaceBox:
    """A box of a scaled/offset image back in full-frame pixels, clipped to the ``w`` x ``h`` frame."""
    x0 = min(max(0, round(box.x / s) + dx), w - 1)
    y0 = min(max(0, round(box.y / s) + dy), h - 1)
    x1 = min(w, max(x0 + 1, round((box.x + box.w) / s) + dx))
    y1 = min(h, max(y0 + 1, round((box.y + box.h) / s) + dy))
    return FaceBox(int(x0), int(y0), int(x1 - x0), int(y1 - y0))


class FaceTracks:
    """Detect (full or around tracks) on an analysed frame and keep the tracks up to date."""

    def __init__(self, detector: Detector, detect_max_side: int = 640, redetect_interval_s: float = 1.0,
                 track_max_age_s: float = 1.5, iou_threshold: float = 0.3, max_faces: int = 8) -> None:
        self.detector = detector
        self.detect_max_side = detect_max_side
        self.redetect_interval_s = redetect_interval_s
        self.track_max_age_s = track_max_age_s
        self.iou_threshold = iou_threshold
        self.max_faces = max_faces
        self.tracks: list[Track] = []
        self.full_detections = 0
        self.roi_detections = 0
        self._next_id = 1
        self._last_full_slot: int | None = None
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        self.tracks.clear()
        self._last_full_slot = None

    def update(self, img: np.ndarray | VideoFrame, t: float) -> list[Track]:
        """Detect on ``img`` (BGR uint8, analysed at stream time ``t``); the tracks seen in it, largest first.

        A :class:`VideoFrame` is read by regions where a detection needs no more (a decoded file frame
        then converts only those)."""
        h, w = img.shape[:2] if isinstance(img, np.ndarray) else img.height_width
        if self._size != (w, h):  # another frame size: old boxes mean nothing in the new frame
            if self._size is not None:
                log.info("face tracks: frame size changed %s -> %s; tracks restarted", self._size, (w, h))
            self._size = (w, h)
            self.reset()
        slot = math.floor(t / self.redetect_interval_s + 1e-9) if self.redetect_interval_s > 0 else None
        full = (max(w, h) <= self.detect_max_side or not self.tracks or slot is None
                or self._last_full_slot is None or slot > self._last_full_slot or len(self.tracks) > _MAX_ROI_TRACKS)
        if full:
            self._last_full_slot = slot
            boxes = self._detect_full(img)
        else:
            boxes = self._detect_rois(img)
        return self._associate(boxes, t)

    def _detect_full(self, picture: np.ndarray | VideoFrame) -> list[FaceBox]:
        self.full_detections += 1
        img = picture if isinstance(picture, np.ndarray) else picture.image
        h, w = img.shape[:2]
        s = min(1.0, self.detect_max_side / max(w, h))
        if s >= 1.0:
            return self.detector.detect(img)
        small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        return [scale_box(b, s, 0, 0, w, h) for b in self.detector.detect(small)]

    def _detect_rois(self, img: np.ndarray | VideoFrame) -> list[FaceBox]:
        h, w = img.shape[:2] if isinstance(img, np.ndarray) else img.height_width
        out: list[FaceBox] = []
        for tr in self.tracks:
            b = tr.box
            gx, gy = round(b.w * _ROI_GROW), round(b.h * _ROI_GROW)
            x0, y0 = max(0, b.x - gx), max(0, b.y - gy)
            x1, y1 = min(w, b.x + b.w + gx), min(h, b.y + b.h + gy)
            s = min(1.0, ROI_FACE_PX / max(1, b.h))
            roi = img[y0:y1, x0:x1] if isinstance(img, np.ndarray) else img.region(x0, y0, x1, y1)
            if s < 1.0:
                roi = cv2.resize(roi, (max(1, round(roi.shape[1] * s)), max(1, round(roi.shape[0] * s))),
                                 interpolation=cv2.INTER_AREA)
            self.roi_detections += 1
            found = [scale_box(f, s, x0, y0, w, h) for f in self.detector.detect(roi)]
            best = max(found, key=lambda f: iou(f, b), default=None)
            if best is not None and iou(best, b) > 0:
                out.append(best)
        return out

    def _associate(self, boxes: list[FaceBox], t: float) -> list[Track]:
        boxes = sorted(boxes, key=lambda b: -b.area)[: self.max_faces]
        pairs = sorted(((iou(tr.box, b), i, j) for i, tr in enumerate(self.tracks) for j, b in enumerate(boxes)),
                       key=lambda p: (-p[0], p[1], p[2]))
        used_t: set[int] = set()
        used_b: set[int] = set()
        seen: list[Track] = []
        for v, i, j in pairs:
            if v < self.iou_threshold or i in used_t or j in used_b:
                continue
            tr = self.tracks[i]
            tr.box, tr.last_seen, tr.hits = boxes[j], t, tr.hits + 1
            used_t.add(i)
            used_b.add(j)
            seen.append(tr)
        for j, b in enumerate(boxes):
            if j not in used_b:
                tr = Track(self._next_id, b, t, t)
                self._next_id += 1
                self.tracks.append(tr)
                seen.append(tr)
        self.tracks = [tr for tr in self.tracks if t - tr.last_seen <= self.track_max_age_s]
        return sorted(seen, key=lambda tr: (-tr.box.area, tr.id))
