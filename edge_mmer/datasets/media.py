"""Media decoding with PyAV: audio resampled to 16 kHz mono float32, frames sampled at a rate.

One function opens one file once. ``DECODES`` counts the files opened for decoding in this
process (the feature cache's tests count decodes with it, not time). Errors are
:class:`MediaError` (a :class:`~edge_mmer.errors.DatasetError`) naming the file.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.errors import MediaError
from edge_mmer.vocab import SAMPLE_RATE

log = logging.getLogger(__name__)

__all__ = ["DECODES", "MediaError", "MediaInfo", "decode_audio", "decode_frames", "probe"]

DECODES = 0  # files opened for decoding in this process


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    duration_s: float | None
    has_audio: bool
    has_video: bool
    fps: float | None
    width: int = 0
    height: int = 0


def _av() -> Any:
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is in the 'train' extra
        raise MediaError("PyAV is needed to decode dataset media: pip install edge-mmer[train]") from exc
    return av


def _open(path: Path) -> Any:
    av = _av()
    if not path.is_file():
        raise MediaError(f"{path}: file is missing")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"{path}: cannot be opened as media: {exc}") from exc


def probe(path: str | Path) -> MediaInfo:
    """Container facts without decoding (duration from the container or its streams)."""
    p = Path(path)
    with _open(p) as container:
        duration = None
        if container.duration is not None:
            duration = float(container.duration) / 1_000_000.0
        else:
            for s in container.streams:
                if s.duration is not None and s.time_base is not None:
                    duration = max(duration or 0.0, float(s.duration * s.time_base))
        vids = container.streams.video
        fps = None
        w = h = 0
        if vids:
            rate = vids[0].average_rate or vids[0].guessed_rate
            fps = float(rate) if rate else None
            w, h = int(vids[0].codec_context.width or 0), int(vids[0].codec_context.height or 0)
        return MediaInfo(p, duration, bool(container.streams.audio), bool(vids), fps, w, h)


def _seek(container: Any, start_s: float | None) -> None:
    if start_s is not None and start_s > 0.5:
        try:  # to the key frame before start; frames before start are then skipped by time
            container.seek(int(max(0.0, start_s - 0.5) * 1_000_000), any_frame=False, backward=True)
        except Exception as exc:  # a failed seek only costs decoding time
            log.debug("seek to %.2f s failed (%s): decoding from the start", start_s, exc)


def decode_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, start_s: float | None = None,
                 end_s: float | None = None) -> np.ndarray:
    """The first audio stream as float32 mono at ``sample_rate``, cut to ``[start_s, end_s)``.

    Raises :class:`MediaError` when the file has no audio stream or cannot be decoded."""
    global DECODES
    av = _av()
    p = Path(path)
    DECODES += 1
    chunks: list[np.ndarray] = []
    first_t: float | None = None
    try:
        with _open(p) as container:
            if not container.streams.audio:
                raise MediaError(f"{p}: has no audio stream")
            stream = container.streams.audio[0]
            _seek(container, start_s)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in container.decode(stream):
                if first_t is None:
                    first_t = float(frame.time) if frame.time is not None else 0.0
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                if end_s is not None and frame.time is not None and float(frame.time) > end_s + 0.1:
                    break
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except av.FFmpegError as exc:
        raise MediaError(f"{p}: audio cannot be decoded: {exc}") from exc
    wave = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    t0 = first_t or 0.0
    lo = 0 if start_s is None else max(0, round((start_s - t0) * sample_rate))
    hi = wave.shape[0] if end_s is None else max(lo, round((end_s - t0) * sample_rate))
    wave = wave[lo:hi]
    if wave.size == 0:
        raise MediaError(f"{p}: no audio samples" + (f" in [{start_s}, {end_s}) s" if start_s or end_s else ""))
    np.clip(wave, -1.0, 1.0, out=wave)
    return np.ascontiguousarray(wave)


def decode_frames(path: str | Path, fps: float | None, start_s: float | None = None,
                  end_s: float | None = None) -> list[np.ndarray]:
    """BGR uint8 frames of the first video stream in ``[start_s, end_s)``.

    With ``fps``, frames are sampled as the runtime's face tracker samples a stream: on the grid of
    slots ``floor(t * fps)``, the first frame of each new slot (every frame when the video's own
    rate is lower)."""
    global DECODES
    av = _av()
    p = Path(path)
    DECODES += 1
    frames: list[np.ndarray] = []
    try:
        with _open(p) as container:
            if not container.streams.video:
                raise MediaError(f"{p}: has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            _seek(container, start_s)
            last_slot: int | None = None
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else 0.0
                if start_s is not None and t < start_s - 1e-6:
                    continue
                if end_s is not None and t >= end_s:
                    break
                if fps is not None:
                    slot = math.floor(t * fps + 1e-9)
                    if last_slot is not None and slot <= last_slot:
                        continue
                    last_slot = slot
                frames.append(frame.to_ndarray(format="bgr24"))
    except av.FFmpegError as exc:
        raise MediaError(f"{p}: video cannot be decoded: {exc}") from exc
    return frames
