"""What sources yield: timestamped audio chunks and video frames.

Every source — a live camera or microphone, a media file, a wav — yields the same two types, so the
pipeline cannot tell them apart. ``t`` is in seconds on the source's stream clock: media time for a
file (0 at the start of the file), ``time.monotonic()`` at capture for a live device. Audio and video
of one run share a clock, so a frame and the speech it belongs to carry comparable times.
"""

from __future__ import annotations

from dataclasses import dataclass

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


Chunk = AudioChunk | VideoFrame
