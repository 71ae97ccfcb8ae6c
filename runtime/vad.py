"""Speech segmentation: WebRTC VAD frames -> utterances, with pre-roll, hangover and length limits.

The segmenter works on a sample clock, in fixed frames from the first sample it is fed, so the
utterances it finds do not depend on how the audio was cut into chunks: feeding a clip in 20 ms
chunks or in one piece gives the same segments (a test holds this).

Rules (all in :class:`~edge_mmer.runtime.settings.VadSettings`, the ``[vad]`` section):

- an utterance **starts** when ``start_frames`` of the last ``start_window`` frames are voiced; its
  start is moved back by ``pre_roll_ms`` (the audio is kept) so soft onsets are not clipped;
- it **ends** after ``hangover_ms`` of consecutive unvoiced frames; the end is the end of the last
  frame fed (the hangover tail is part of the utterance, as the silence around a training clip is);
- it is **cut** at ``max_utterance_s`` (long speech becomes consecutive windows: the next window
  starts right away while speech goes on);
- one shorter than ``min_utterance_s`` is dropped (and counted).

The length limits not given are the bundle's (the pipeline fills them in); a segmenter built on its
own takes them from the default audio front end.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edge_mmer.config import AudioConfig
from edge_mmer.runtime.chunks import AudioChunk
from edge_mmer.runtime.settings import VadSettings
from edge_mmer.vocab import SAMPLE_RATE

__all__ = ["Utterance", "VadSegmenter", "VadSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One speech segment: ``samples`` (int16) from ``start`` to ``end`` on the stream clock."""

    start: float
    end: float
    samples: np.ndarray
    cut: bool = False  # True when it was cut at max_utterance_s (speech went on)

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


class VadSegmenter:
    """Feed :class:`AudioChunk` s, get finished :class:`Utterance` s. ``reset()`` forgets everything."""

    def __init__(self, settings: VadSettings | None = None) -> None:
        self.settings = (settings or VadSettings()).for_front_end(AudioConfig())
        self.settings.validate()
        lo, hi = self.settings.min_utterance_s, self.settings.max_utterance_s
        assert lo is not None and hi is not None  # for_front_end filled them in
        self.min_utterance_s, self.max_utterance_s = lo, hi
        try:
            import webrtcvad
        except ImportError as exc:  # pragma: no cover - the capture extra is missing
            raise ImportError("the runtime needs webrtcvad: pip install 'edge-mmer[capture]'") from exc
        self._vad = webrtcvad.Vad(self.settings.aggressiveness)
        self.dropped_short = 0
        self.reset()

    def reset(self) -> None:
        s = self.settings
        self._pending = np.zeros(0, dtype=np.int16)  # samples not yet framed
        self._clock: float | None = None  # stream time of the next sample to frame
        self._history: collections.deque[tuple[float, np.ndarray, bool]] = collections.deque(
            maxlen=max(s.start_window, -(-s.pre_roll_ms // s.frame_ms) + s.start_window))
        self._active = False
        self._frames: list[np.ndarray] = []
        self._start = 0.0
        self._silent_run = 0

    @property
    def active(self) -> bool:
        """Inside an utterance (speech detected, not yet ended)."""
        return self._active

    @property
    def active_start(self) -> float | None:
        return self._start if self._active else None

    @property
    def clock(self) -> float | None:
        """The stream time up to which audio has been segmented (None before any audio)."""
        return self._clock

    def feed(self, chunk: AudioChunk) -> list[Utterance]:
        """Segment a chunk; returns the utterances it finished."""
        return [u for _, u in self.iter_frames(chunk) if u is not None]

    def iter_frames(self, chunk: AudioChunk) -> Iterator[tuple[float, Utterance | None]]:
        """Segment a chunk frame by frame: yields ``(clock after the frame, finished utterance or None)``.

        The pipeline advances its own clock-driven work (face-only windows, heartbeats) between
        frames, so its output does not depend on how the audio was chunked.
        """
        if chunk.sample_rate != SAMPLE_RATE:
            raise ValueError(f"VAD: audio chunk at {chunk.sample_rate} Hz, expected {SAMPLE_RATE} Hz")
        samples = np.asarray(chunk.samples)
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError(f"VAD: expected mono int16 samples, got {samples.dtype} {samples.shape}")
        if self._clock is None:
            self._clock = chunk.t
        elif not self._pending.size and abs(chunk.t - self._clock) > 0.25:
            # a gap (or overlap) in a live stream: re-anchor the clock on the device's timestamp
            self._clock = chunk.t
        self._pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        n = self.settings.frame_samples
        i = 0
        try:
            while len(self._pending) - i >= n:
                utt = self._step(self._pending[i : i + n])
                i += n
                yield self._clock, utt
        finally:
            self._pending = self._pending[i:].copy() if i else self._pending

    def flush(self) -> list[Utterance]:
        """End of stream: close an utterance in progress (if long enough)."""
        out: list[Utterance] = []
        if self._active:
            utt = self._close(cut=False)
            if utt is not None:
                out.append(utt)
        return out

    def _step(self, frame: np.ndarray) -> Utterance | None:
        s = self.settings
        assert self._clock is not None
        t = self._clock
        self._clock = t + s.frame_ms / 1000.0
        voiced = bool(self._vad.is_speech(frame.tobytes(), SAMPLE_RATE))
        if not self._active:
            self._history.append((t, frame, voiced))
            recent = list(self._history)[-s.start_window :]
            if sum(v for _, _, v in recent) >= s.start_frames:
                pre = -(-s.pre_roll_ms // s.frame_ms)
                keep = list(self._history)[-(len(recent) + pre) :]
                # start at the first voiced frame of the window, less the pre-roll
                first_voiced = next(k for k, (_, _, v) in enumerate(keep) if v and k >= len(keep) - len(recent))
                begin = max(0, first_voiced - pre)
                self._frames = [f for _, f, _ in keep[begin:]]
                self._start = keep[begin][0]
                self._active = True
                self._silent_run = 0
                self._history.clear()
            return None
        self._frames.append(frame)
        self._silent_run = 0 if voiced else self._silent_run + 1
        length_s = len(self._frames) * s.frame_ms / 1000.0
        if self._silent_run * s.frame_ms >= s.hangover_ms:
            return self._close(cut=False)
        if length_s >= self.max_utterance_s:
            utt = self._close(cut=True)
            # speech goes on: the next window starts at once
            self._active = True
            self._frames = []
            self._start = self._clock
            self._silent_run = 0
            return utt
        return None

    def _close(self, cut: bool) -> Utterance | None:
        samples = np.concatenate(self._frames) if self._frames else np.zeros(0, dtype=np.int16)
        start = self._start
        self._active = False
        self._frames = []
        self._history.clear()
        end = start + len(samples) / SAMPLE_RATE
        if len(samples) / SAMPLE_RATE < self.min_utterance_s:
            self.dropped_short += 1
            log.debug("VAD: dropped a %.2f s segment (min %.2f s)", len(samples) / SAMPLE_RATE, self.min_utterance_s)
            return None
        return Utterance(start=start, end=end, samples=samples, cut=cut)
