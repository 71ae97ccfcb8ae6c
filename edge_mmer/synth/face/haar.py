"""Does OpenCV's Haar cascade find the rendered faces? The generator's own acceptance check.

Detection goes through the front end's :class:`~edge_mmer.features.face.HaarFaceDetector` with the
stock parameters (scale factor 1.1, 5 neighbours, 40 px minimum), so the rate measured here is the one
training and the runtime see. Its ``max_side`` downscale is switched off: rendered frames are
320 x 240 (well under the front end's 640 px), and a caller asking for larger frames measures the
cascade on them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edge_mmer.config import LABELS
from edge_mmer.features.face import HaarFaceDetector
from edge_mmer.synth.face.expressions import sample_expression
from edge_mmer.synth.face.identity import random_identity, sample_pose
from edge_mmer.synth.face.render import DEFAULT_FRAME_SIZE, render_face

__all__ = ["HaarStats", "haar_detect", "haar_detection_rate"]

_NO_DOWNSCALE = 1 << 30  # a max_side no frame reaches


@lru_cache(maxsize=1)
def _detector() -> HaarFaceDetector:
    return HaarFaceDetector(max_side=_NO_DOWNSCALE)


def haar_detect(frame: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Detect faces with the stock frontal-face Haar cascade (x, y, w, h boxes)."""
    return [(b.x, b.y, b.w, b.h) for b in _detector().detect(frame)]


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
    for label in LABELS:
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
