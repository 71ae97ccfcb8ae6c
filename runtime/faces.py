"""Faces over time: detect at the analysis rate, follow every face, keep crops, hand out windows.

Frames are analysed on a fixed grid of the stream clock (slot ``floor(t * analysis_fps)``: the
first frame of each slot), so which frames are analysed depends only on their timestamps, not on
how fast they arrive. Each analysed frame leaves a crop of its largest face, resized to the
encoder's size exactly as at training time (:func:`edge_mmer.features.face.crop_face` /
``resize_face``), or a "no face" mark. An utterance then takes the crops inside its time window,
evenly subsampled to ``frames_per_utterance`` by the training front end's own rule
(:func:`edge_mmer.datasets.base.even_subsample`).

Detection is downscaled and tracked (:mod:`edge_mmer.runtime.face_tracks`): every face in view gets a
track id and a crop per analysed frame, and on every frame its mouth region's motion is measured
(:mod:`edge_mmer.runtime.speaker`) so an utterance can be attributed to the person speaking. Gray
and BGRA frames are converted to BGR; a frame of another size restarts the tracks.

Only small uint8 crops are kept (a few seconds' worth), never full frames, and nothing is written.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

import cv2
import numpy as np

from edge_mmer.config import FaceConfig
from edge_mmer.datasets.base import even_subsample
from edge_mmer.features.face import FaceBox, HaarFaceDetector, crop_face, crop_square, resize_face
from edge_mmer.hashing import sha256_file
from edge_mmer.runtime.chunks import VideoFrame
from edge_mmer.runtime.face_tracks import FaceTracks, Track
from edge_mmer.runtime.speaker import MouthMotion, Region

log = logging.getLogger(__name__)


class FaceDetector(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]: ...


class YuNetFaceDetector:
    """OpenCV's YuNet (``cv2.FaceDetectorYN``) from a model file the user provides (``.onnx``).

    The model is not shipped (download ``face_detection_yunet_2023mar.onnx`` from the OpenCV Zoo);
    its sha256 is logged so a deployment can pin it.
    """

    def __init__(self, model_path: str | Path, score_threshold: float = 0.7) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"YuNet model file {path} does not exist (faces.yunet_model: download "
                                    "face_detection_yunet_2023mar.onnx from the OpenCV Zoo)")
        self.sha256 = sha256_file(path)
        try:
            self._det = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold)
        except cv2.error as exc:
            raise ValueError(f"YuNet model file {path}: OpenCV cannot load it: {exc}") from exc
        self._size: tuple[int, int] | None = None
        log.info("YuNet face detector %s (sha256 %s)", path, self.sha256)

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        h, w = frame_bgr.shape[:2]
        if self._size != (w, h):
            self._det.setInputSize((w, h))
            self._size = (w, h)
        faces = cast("np.ndarray | None", self._det.detect(frame_bgr)[1])  # None when no face is found
        if faces is None:
            return []
        out = []
        for row in faces:
            x, y, bw, bh = (round(float(v)) for v in row[:4])
            x0, y0 = max(0, x), max(0, y)
            bw, bh = min(w, x + bw) - x0, min(h, y + bh) - y0
            if bw > 0 and bh > 0:
                out.append(FaceBox(x0, y0, bw, bh))
        return out


def make_detector(cfg: FaceConfig, yunet_model: str | Path | None = None) -> FaceDetector:
    """The bundle's detector: Haar by default, YuNet when ``face.detector = "yunet"`` or a model is given."""
    if yunet_model is not None:
        return YuNetFaceDetector(yunet_model)
    if cfg.detector == "yunet":
        raise ValueError("the bundle's face detector is 'yunet': pass its model file (faces.yunet_model / "
                         "--yunet-model PATH)")
    return HaarFaceDetector()


@dataclass(frozen=True)
class FaceObservation:
    t: float
    crop: np.ndarray | None  # the largest face's (crop_size, crop_size, 3) uint8 crop, None = no face
    people: tuple[tuple[int, FaceBox, np.ndarray], ...] = ()  # (track id, box, crop) of every face, largest first


def well_formed(frame: VideoFrame) -> bool:
    """Whether the frame can be analysed (a decoded file frame always can: checked without converting it)."""
    return frame.lazy or as_bgr(frame.image) is not None


def as_bgr(img: object) -> np.ndarray | None:
    """A camera frame as BGR uint8 (gray and BGRA converted), or None when it cannot be one."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim not in (2, 3) or min(img.shape[:2]) < 8:
        return None
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return cast("np.ndarray", cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    if img.ndim == 3 and img.shape[2] == 4:
        return cast("np.ndarray", cv2.cvtColor(img, cv2.COLOR_BGRA2BGR))
    return img if img.ndim == 3 and img.shape[2] == 3 else None


def _crop(img: np.ndarray | VideoFrame, box: FaceBox, margin: float) -> np.ndarray:
    """:func:`crop_face` of the frame, reading a :class:`VideoFrame` only inside the crop's square."""
    if isinstance(img, np.ndarray):
        return crop_face(img, box, margin)
    x0, y0, side = crop_square(box, margin)
    cx0, cy0 = max(0, x0), max(0, y0)
    inner = img.region(cx0, cy0, x0 + side, y0 + side)  # the square clipped to the frame
    return crop_face(inner, FaceBox(box.x - cx0, box.y - cy0, box.w, box.h), margin)


class FaceTracker:
    """Feed :class:`VideoFrame` s; ask for the face crops of a time window."""

    def __init__(self, cfg: FaceConfig, detector: FaceDetector, analysis_fps: float | None = None,
                 keep_s: float = 20.0, tracks: FaceTracks | None = None) -> None:
        self.cfg = cfg
        self.detector = detector
        self.analysis_fps = cfg.analysis_fps if analysis_fps is None else analysis_fps
        if not 0 < self.analysis_fps <= 60:
            raise ValueError(f"analysis fps must be in (0, 60], got {self.analysis_fps}")
        self.keep_s = keep_s
        self.frames_seen = 0
        self.frames_analysed = 0
        self.frames_with_face = 0
        self.bad_frames = 0
        self._obs: collections.deque[FaceObservation] = collections.deque()
        self._last_slot: int | None = None
        self._clock: float | None = None
        self.tracks = tracks or FaceTracks(detector)
        self.motion = MouthMotion()
        self._boxes: dict[int, FaceBox] = {}  # the latest analysed frame's boxes, by track id
        # guards what a decision reads (observations, mouth motion) against the face worker's writes;
        # held only to store results, never during detection
        self.lock = threading.Lock()

    @property
    def clock(self) -> float | None:
        """The latest frame time seen (None before any frame): how far the video stream has got."""
        return self._clock

    def reset(self) -> None:
        with self.lock:
            self._obs.clear()
            self.motion.reset()
        self._last_slot = None
        self.tracks.reset()
        self._boxes = {}

    def _slot(self, t: float) -> int:
        return math.floor(t * self.analysis_fps + 1e-9)

    def wants(self, t: float) -> bool:
        """Whether a frame at ``t`` would be analysed (the analysis-fps cap)."""
        return self._last_slot is None or self._slot(t) > self._last_slot

    def feed(self, frame: VideoFrame) -> FaceObservation | None:
        """Analyse the frame if its slot is new; returns the observation made, if any."""
        self.frames_seen += 1
        picture: np.ndarray | VideoFrame
        motion_source: np.ndarray | Region
        if frame.lazy:  # a decoded file frame: converted only where it is read (see sources/decoded.py)
            picture, motion_source = frame, frame.region
        else:
            img = as_bgr(frame.image)
            if img is None:
                self.bad_frames += 1  # every malformed frame is counted, analysed slot or not
                log.debug("face tracker: skipped a malformed frame %s",
                          getattr(frame.image, "shape", type(frame.image)))
                return None
            picture, motion_source = img, img
        self._clock = frame.t if self._clock is None else max(self._clock, frame.t)
        obs = None
        if self.wants(frame.t):
            self._last_slot = self._slot(frame.t)
            obs = self._analyse(picture, frame.t)
        with self.lock:
            self.motion.feed(motion_source, frame.t, self._boxes)
        return obs

    def _analyse(self, img: np.ndarray | VideoFrame, t: float) -> FaceObservation:
        self.frames_analysed += 1
        seen: list[Track] = self.tracks.update(img, t)
        self._boxes = {tr.id: tr.box for tr in seen}
        people = []
        for tr in seen:
            try:
                people.append((tr.id, tr.box, resize_face(_crop(img, tr.box, self.cfg.margin), self.cfg.crop_size)))
            except ValueError as exc:
                log.debug("face tracker: crop failed: %s", exc)
        crop = people[0][2] if seen and people and people[0][0] == seen[0].id else None
        if crop is not None:
            self.frames_with_face += 1
        obs = FaceObservation(t, crop, tuple(people))
        with self.lock:
            self._obs.append(obs)
        return obs

    def prune(self, before: float) -> None:
        """Forget observations older than ``before`` (the pipeline calls this as its clock advances)."""
        with self.lock:
            while self._obs and self._obs[0].t < before:
                self._obs.popleft()
            self.motion.prune(before)

    def crops_between(self, start: float, end: float, limit: int | None = None,
                      track: int | None = None) -> list[np.ndarray]:
        """Face crops observed in ``[start, end]`` (the largest face's, or track ``track``'s), evenly
        subsampled to ``limit`` (default: frames per utterance). Call with :attr:`lock` held while a
        face worker runs."""
        if track is None:
            crops = [o.crop for o in self._obs if start <= o.t <= end and o.crop is not None]
        else:
            crops = [c for o in self._obs if start <= o.t <= end for tid, _, c in o.people if tid == track]
        return even_subsample(crops, self.cfg.frames_per_utterance if limit is None else limit)

    def people_between(self, start: float, end: float) -> dict[int, FaceBox]:
        """Every track seen in ``[start, end]`` with its largest box there."""
        out: dict[int, FaceBox] = {}
        for o in self._obs:
            if start <= o.t <= end:
                for tid, box, _ in o.people:
                    if tid not in out or box.area > out[tid].area:
                        out[tid] = box
        return out
