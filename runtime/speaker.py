"""Who is speaking: audio-visual synchrony between each face's mouth and the voice.

With several people in view the speech channel describes one person; the face channel must describe
the same one. A speaker's mouth opens and closes with the loudness of the voice, so the frame-to-frame
change of the mouth region (:class:`MouthMotion`, measured on every frame, a 16x8 gray patch of the
lower face normalised by its mean so a lighting change is not motion) follows the change of the voice
envelope. Per utterance each track gets the Pearson correlation of the two series (best over a
lag of up to two frames, for a camera whose picture lags the sound); the best track speaks. When the
evidence is weak (too few frames, a low best score, or a runner-up within ``margin``) the largest face
is taken instead, as a single-person device would. Everything runs on the stream clock.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edge_mmer.features.face import FaceBox
from edge_mmer.vocab import SAMPLE_RATE

_MOUTH = (0.25, 0.62, 0.75, 0.95)  # the mouth region as fractions of the face box (x0, y0, x1, y1)
_PATCH = (16, 8)
_MIN_FRAMES = 8
_MAX_LAG = 2

Region = Callable[[int, int, int, int], np.ndarray]  # (x0, y0, x1, y1) -> the BGR pixels there, clipped


def _slice(img: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    return img[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]


def mouth_patch(img: np.ndarray | Region, box: FaceBox) -> np.ndarray | None:
    """The mouth region of ``box`` as a small mean-normalised gray patch (None when it is empty).

    ``img`` is the BGR frame, or a function giving a region of it (so a decoded frame converts
    only the mouth, see :class:`edge_mmer.runtime.chunks.VideoFrame`)."""
    x0, y0 = box.x + round(_MOUTH[0] * box.w), box.y + round(_MOUTH[1] * box.h)
    x1, y1 = box.x + round(_MOUTH[2] * box.w), box.y + round(_MOUTH[3] * box.h)
    roi = _slice(img, x0, y0, x1, y1) if isinstance(img, np.ndarray) else img(x0, y0, x1, y1)
    if roi.shape[0] < 2 or roi.shape[1] < 2:
        return None
    gray = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
    patch = cv2.resize(gray, _PATCH, interpolation=cv2.INTER_AREA).astype(np.float32)
    out: np.ndarray = patch / (float(patch.mean()) + 1.0)
    return out


class MouthMotion:
    """Per track, how much the mouth region changed at each frame (``(t, motion)`` series)."""

    def __init__(self) -> None:
        self._prev: dict[int, tuple[FaceBox, np.ndarray]] = {}
        self._series: dict[int, collections.deque[tuple[float, float]]] = {}

    def reset(self) -> None:
        self._prev.clear()
        self._series.clear()

    def feed(self, img: np.ndarray | Region, t: float, boxes: dict[int, FaceBox]) -> None:
        for tid, box in boxes.items():
            p = mouth_patch(img, box)
            if p is None:
                continue
            prev = self._prev.get(tid)
            if prev is not None and prev[0] == box:  # a moved box samples another region: no motion measured
                self._series.setdefault(tid, collections.deque()).append((t, float(np.abs(p - prev[1]).mean())))
            self._prev[tid] = (box, p)
        for tid in [k for k in self._prev if k not in boxes]:
            del self._prev[tid]

    def prune(self, before: float) -> None:
        for tid in list(self._series):
            s = self._series[tid]
            while s and s[0][0] < before:
                s.popleft()
            if not s:
                del self._series[tid]

    def between(self, tid: int, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        pts = [(t, m) for t, m in self._series.get(tid, ()) if start <= t <= end]
        return np.array([p[0] for p in pts], np.float64), np.array([p[1] for p in pts], np.float64)


def envelope_at(samples: np.ndarray, start: float, ts: np.ndarray, dt: float) -> np.ndarray:
    """The voice loudness (dB, floored 35 dB under the peak) in ``[t, t + dt)`` for each frame time
    (silence before ``start`` and after the samples)."""
    x = samples.astype(np.float64) / 32768.0
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    n = max(1, round(dt * SAMPLE_RATE))
    a = np.round((np.asarray(ts, np.float64) - start) * SAMPLE_RATE).astype(np.int64)
    lo, hi = np.clip(a, 0, len(x)), np.clip(a + n, 0, len(x))
    energy = np.where((a >= 0) & (hi > lo), (csum[hi] - csum[lo]) / np.maximum(1, hi - lo), 0.0)
    db = 10.0 * np.log10(energy + 1e-12)
    return np.maximum(db, db.max() - 35.0) if len(db) else db


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or float(a.std()) < 1e-9 or float(b.std()) < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def sync_score(ts: np.ndarray, motion: np.ndarray, samples: np.ndarray, start: float) -> float:
    """How well the mouth's motion follows the change of the voice envelope (-1..1; 0 without evidence)."""
    if len(ts) < _MIN_FRAMES:
        return 0.0
    dt = float(np.median(np.diff(ts))) if len(ts) > 1 else 1.0 / 30
    # the picture at t shows the mouth of [t, t + dt) while the motion there compares with the frame before
    change = np.abs(np.diff(envelope_at(samples, start, ts - dt, dt), prepend=np.nan))[1:]
    motion = motion[1:]
    best = 0.0
    for lag in range(-_MAX_LAG, _MAX_LAG + 1):
        a = motion[max(0, lag): len(motion) + min(0, lag)]
        b = change[max(0, -lag): len(change) + min(0, -lag)]
        best = max(best, _pearson(a, b))
    return best


@dataclass(frozen=True)
class SpeakerChoice:
    """The person an utterance is attributed to."""

    track_id: int
    box: FaceBox
    score: float | None  # the synchrony score of the chosen track (None: one face, nothing to compare)
    method: str  # "sync" | "largest"


def choose_speaker(candidates: dict[int, FaceBox], motion: MouthMotion, samples: np.ndarray, start: float,
                   end: float, min_score: float, margin: float) -> SpeakerChoice | None:
    """The speaking track among ``candidates`` (track id -> its largest box in the window)."""
    if not candidates:
        return None
    largest = max(candidates, key=lambda k: (candidates[k].area, -k))
    scores = {tid: sync_score(*motion.between(tid, start, end), samples, start) for tid in candidates}
    if len(candidates) == 1:
        return SpeakerChoice(largest, candidates[largest], round(scores[largest], 4), "sync")
    ranked = sorted(scores, key=lambda k: (-scores[k], k))
    best, second = ranked[0], ranked[1]
    if scores[best] >= min_score and scores[best] - scores[second] >= margin:
        return SpeakerChoice(best, candidates[best], round(scores[best], 4), "sync")
    return SpeakerChoice(largest, candidates[largest], round(scores[largest], 4), "largest")
