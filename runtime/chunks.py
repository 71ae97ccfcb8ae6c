"""What sources yield: timestamped audio chunks and video frames.

Every source — a live camera or microphone, a media file, a wav — yields the same two types, so the
pipeline cannot tell them apart. ``t`` is in seconds on the source's stream clock: media time for a
file (0 at the start of the file), ``time.monotonic()`` at capture for a live device. Audio and video
of one run share a clock, so a frame and the speech it belongs to carry comparable times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class AudioChunk:
    """Mono 16-bit PCM samples; ``t`` is the time of the first sample."""

    t: float
    samples: np.ndarray  # (n,) int16
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def end(self) -> float:
        return self.t + self.duration


@dataclass(frozen=True)
class VideoFrame:
    """One BGR uint8 frame (H, W, 3); ``index`` counts frames delivered by the source."""

    t: float
    image: np.ndarray
    index: int

    lazy: ClassVar[bool] = False  # True: ``image`` is converted on first use and :meth:`region` costs less

    @property
    def height_width(self) -> tuple[int, int]:
        """The picture's (height, width), known without converting a decoded frame."""
        h, w = self.image.shape[:2]
        return int(h), int(w)

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """``image[y0:y1, x0:x1]`` clipped to the frame (a decoded file frame converts only that region)."""
        return self.image[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]


Chunk = AudioChunk | VideoFrame
