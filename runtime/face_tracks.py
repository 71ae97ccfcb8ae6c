"""Face boxes over time at camera resolution: downscaled detection, cheap following, stable track ids.

A full-frame detection at 1280x720 costs tens of milliseconds on a small CPU (more on real pictures,
whose texture keeps the cascade busy, than on rendered ones), so it runs only on a fixed schedule of
the stream clock -- the first analysed frame of each ``redetect_interval_s`` slot, whether or not a
face is known -- on a gray copy whose longer side is ``detect_max_side``, scanned for faces of at
least ``min_face_px`` camera pixels at a coarser pyramid step (:data:`FULL_STEP`). Each candidate is
confirmed by looking again around it, as a followed face is. Between full detections each known
face is followed by detecting in a small region around its track, downscaled so the face is about
:data:`ROI_FACE_PX` pixels tall and searched for at about its last size (a millisecond or two), with
a second, wider look at :data:`ROI_RETRY_PX` when that finds nothing. A face that comes into view is
found at the next slot. Which frames get which kind of detection depends only on their timestamps,
so a file streamed chunk by chunk gives the same boxes as the file read whole.

A frame no larger than :data:`WHOLE_MAX_SIDE` is detected whole on every analysed frame, by the
bundle's detector as at training time (the demo clip's 320x240 frames); from 640x480 up, that would
cost tens of milliseconds per analysed frame on a photographed scene, so they are scheduled and
tracked like any camera frame (copies are only ever downscaled, never enlarged).

Tracks are associated by box overlap (IoU, greedy, largest overlap first) and live ``track_max_age_s``
without a detection. Track ids count up from 1 per stream and are never reused.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

import cv2
import numpy as np

from edge_mmer.features.face import FaceBox
from edge_mmer.runtime.chunks import VideoFrame

log = logging.getLogger(__name__)

ROI_FACE_PX = 40  # the face height a region is downscaled to for following a face (Haar: 1-2 ms)
ROI_RETRY_PX = 56  # ... and for a second look, at any size, when none was found at ROI_FACE_PX
_ROI_SIZES = (0.7, 1.45)  # a followed face is looked for between these multiples of its last size
_ROI_GROW = 0.5  # the region: the track's box grown by this fraction of its size on every side
_MAX_ROI_TRACKS = 6  # more tracks than this: a full detection is cheaper than the regions
FULL_STEP = 1.2  # the pyramid step of a full detection's scan (Haar's own, 1.1, costs 1.7x on real pictures)
_FIND_SLACK = 0.9  # a full detection looks for faces from this fraction of min_face_px (box sizes vary)
WHOLE_MAX_SIDE = 320  # frames no larger (the demo clip's 320x240) are detected whole on every analysed frame
CASCADE_PX = 24  # the Haar cascade's window: no face smaller than this is found in the image it scans


class Detector(Protocol):
    """What the tracker needs of a face detector (Haar, YuNet): boxes in the given image's pixels."""

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]: ...


@runtime_checkable
class Finder(Detector, Protocol):
    """A detector that can also scan a gray image at the scale the tracker chose, for faces of a size
    range (the Haar cascade)."""

    def find(self, gray: np.ndarray, min_px: int, max_px: int | None = None,
             step: float | None = None) -> list[FaceBox]: ...


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


def _scaled(img: np.ndarray, s: float) -> np.ndarray:
    if s >= 1.0:
        return img
    size = (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s)))
    return cast("np.ndarray", cv2.resize(img, size, interpolation=cv2.INTER_AREA))


def _best_match(found: list[FaceBox], b: FaceBox, s: float, x0: int, y0: int, w: int, h: int) -> FaceBox | None:
    """Of boxes found in a region (offset ``x0, y0``, scaled by ``s``), the one overlapping ``b`` most."""
    best = max((scale_box(f, s, x0, y0, w, h) for f in found), key=lambda f: iou(f, b), default=None)
    return best if best is not None and iou(best, b) > 0 else None


def scale_box(box: FaceBox, s: float, dx: int, dy: int, w: int, h: int) -> FaceBox:
    """A box of a scaled/offset image back in full-frame pixels, clipped to the ``w`` x ``h`` frame."""
    x0 = min(max(0, round(box.x / s) + dx), w - 1)
    y0 = min(max(0, round(box.y / s) + dy), h - 1)
    x1 = min(w, max(x0 + 1, round((box.x + box.w) / s) + dx))
    y1 = min(h, max(y0 + 1, round((box.y + box.h) / s) + dy))
    return FaceBox(int(x0), int(y0), int(x1 - x0), int(y1 - y0))


class FaceTracks:
    """Detect (full or around tracks) on an analysed frame and keep the tracks up to date."""

    def __init__(self, detector: Detector, detect_max_side: int = 640, redetect_interval_s: float = 2.0,
                 track_max_age_s: float = 2.5, iou_threshold: float = 0.3, max_faces: int = 8,
                 min_face_px: int = 80) -> None:
        self.detector = detector
        self.detect_max_side = detect_max_side
        self.redetect_interval_s = redetect_interval_s
        self.track_max_age_s = track_max_age_s
        self.iou_threshold = iou_threshold
        self.max_faces = max_faces
        self.min_face_px = min_face_px
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
            self._warn_min_face(w, h)
        if max(w, h) <= WHOLE_MAX_SIDE:  # a small frame: detected whole every time, as in training
            self.full_detections += 1
            return self._associate(self.detector.detect(img if isinstance(img, np.ndarray) else img.image), t)
        slot = math.floor(t / self.redetect_interval_s + 1e-9) if self.redetect_interval_s > 0 else None
        due = slot is None or self._last_full_slot is None or slot > self._last_full_slot
        if due or len(self.tracks) > _MAX_ROI_TRACKS:
            self._last_full_slot = slot
            boxes = self._detect_full(img, w, h)
        else:  # between full detections only known faces are followed; a new face waits for the schedule
            boxes = [f for f in (self._detect_around(img, tr.box, w, h) for tr in self.tracks) if f is not None]
        return self._associate(boxes, t)

    def _detect_full(self, picture: np.ndarray | VideoFrame, w: int, h: int) -> list[FaceBox]:
        """A detection over the whole of a camera frame, on a copy downscaled to ``detect_max_side``.

        With a :class:`Finder` (Haar) the copy is gray, scanned for faces of at least ``min_face_px``
        at a pyramid step of :data:`FULL_STEP`, few neighbours needed; each candidate is
        then confirmed by the detector in its region (as a tracked face is followed), which also gives
        the box the crops are cut from. Another detector (YuNet) runs on a BGR copy."""
        self.full_detections += 1
        s = self._copy_scale(w, h)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        img = picture if isinstance(picture, np.ndarray) else picture.image
        if not isinstance(self.detector, Finder):
            return [scale_box(b, s, 0, 0, w, h)
                    for b in self.detector.detect(cv2.resize(img, size, interpolation=cv2.INTER_AREA))]
        small = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), size, interpolation=cv2.INTER_AREA)
        found = self.detector.find(small, max(CASCADE_PX, round(self.min_face_px * s * _FIND_SLACK)), step=FULL_STEP)
        out: list[FaceBox] = []
        for cand in sorted((scale_box(b, s, 0, 0, w, h) for b in found), key=lambda b: -b.area):
            box = self._detect_around(picture, cand, w, h)
            if box is not None and all(iou(box, o) < 0.5 for o in out):  # overlapping candidates: one face
                out.append(box)
        return out

    def _detect_around(self, img: np.ndarray | VideoFrame, b: FaceBox, w: int, h: int) -> FaceBox | None:
        """The face in the region around ``b`` (grown by half its size) that overlaps ``b`` most, or None.

        With a :class:`Finder` the region is first downscaled so the face is about :data:`ROI_FACE_PX`
        tall and scanned for faces of :data:`_ROI_SIZES` times the expected size (a millisecond or
        two); when that finds none, the region is looked at once more downscaled so the face is about
        :data:`ROI_RETRY_PX` tall, for a face of any size (another detector looks only this way)."""
        gx, gy = round(b.w * _ROI_GROW), round(b.h * _ROI_GROW)
        x0, y0 = max(0, b.x - gx), max(0, b.y - gy)
        x1, y1 = min(w, b.x + b.w + gx), min(h, b.y + b.h + gy)
        roi = img[y0:y1, x0:x1] if isinstance(img, np.ndarray) else img.region(x0, y0, x1, y1)
        if not isinstance(self.detector, Finder):
            s = min(1.0, ROI_RETRY_PX / max(1, b.h))
            self.roi_detections += 1
            return _best_match(self.detector.detect(_scaled(roi, s)), b, s, x0, y0, w, h)
        gray = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
        for face_px, sizes in ((ROI_FACE_PX, _ROI_SIZES), (ROI_RETRY_PX, None)):
            s = min(1.0, face_px / max(1, b.h))
            # about its last size; then any size (a face that changed, or is cut by the border)
            lo, hi = (CASCADE_PX, None) if sizes is None else (
                max(CASCADE_PX, math.floor(b.h * s * sizes[0])), math.ceil(b.h * s * sizes[1]))
            self.roi_detections += 1
            best = _best_match(self.detector.find(_scaled(gray, s), lo, hi), b, s, x0, y0, w, h)
            if best is not None:
                return best
        return None

    def _copy_scale(self, w: int, h: int) -> float:
        """The scale of a full detection's copy of a ``w`` x ``h`` frame (only ever down)."""
        return min(1.0, self.detect_max_side / max(w, h))

    def _warn_min_face(self, w: int, h: int) -> None:
        s = self._copy_scale(w, h)
        if isinstance(self.detector, Finder) and self.min_face_px * s < CASCADE_PX:
            log.warning("face tracks: at %dx%d with faces.detect_max_side = %d the smallest face found is %d px "
                        "tall, not faces.min_face_px = %d (raise detect_max_side to %d to find those)", w, h,
                        self.detect_max_side, math.ceil(CASCADE_PX / s), self.min_face_px,
                        math.ceil(max(w, h) * CASCADE_PX / self.min_face_px))

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
