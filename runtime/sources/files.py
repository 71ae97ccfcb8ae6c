"""Media files as a source: a video with its own audio track, or a video plus a separate audio file.

Decoding is PyAV's (FFmpeg). Audio is resampled to 16 kHz mono int16 and cut into fixed chunks
(``t`` = sample offset / 16 000 after the first audio sample, continuous; the last chunk may be
shorter); video frames come out as BGR uint8 with ``t`` = the frame's presentation time. Both are
relative to the start of the container, so a frame and the speech it belongs to carry comparable
times, and they are merged in time order (audio first on a tie). The file is streamed packet by
packet — never loaded whole — and the same file always gives the same chunks. A frame's BGR
picture is converted where it is first read, whole or by regions
(:mod:`edge_mmer.runtime.sources.decoded`), so the reading thread only decodes.

``realtime=True`` paces delivery to the wall clock (a chunk is released at start + t), as a camera
and a microphone would deliver it; ``realtime=False`` delivers as fast as the consumer takes it.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import threading
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.runtime.chunks import AudioChunk, Chunk, VideoFrame
from edge_mmer.runtime.sources.base import Source, SourceError
from edge_mmer.runtime.sources.decoded import decoded_frame
from edge_mmer.runtime.sources.pacing import Pacer, chunk_samples, import_av
from edge_mmer.vocab import SAMPLE_RATE

__all__ = ["MediaFileSource", "MediaInfo", "Pacer", "chunk_samples", "fixed_chunks", "import_av", "open_container",
           "probe_media"]

log = logging.getLogger(__name__)

def fixed_chunks(blocks: Iterable[np.ndarray], t0: float, size: int,
                 sample_rate: int = SAMPLE_RATE) -> Iterator[AudioChunk]:
    """Re-cut int16 sample blocks of any length into chunks of ``size`` samples (the last may be shorter).

    Chunk ``k`` starts at ``t0 + k * size / sample_rate``: the clock is the sample count, so it is
    continuous and exact whatever the block sizes.
    """
    pending: list[np.ndarray] = []
    have = 0
    offset = 0
    for block in blocks:
        if block.size == 0:
            continue
        pending.append(block)
        have += block.size
        if have < size:
            continue
        buf = np.concatenate(pending) if len(pending) > 1 else pending[0]
        start = 0
        while have - start >= size:
            yield AudioChunk(t0 + offset / sample_rate, buf[start:start + size].astype(np.int16, copy=True),
                             sample_rate)
            offset += size
            start += size
        pending = [buf[start:]] if start < have else []
        have -= start
    if have:
        tail = np.concatenate(pending) if len(pending) > 1 else pending[0]
        yield AudioChunk(t0 + offset / sample_rate, tail.astype(np.int16, copy=True), sample_rate)


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds (``duration_s`` as the container declares it, None when unknown)."""

    path: Path
    has_video: bool
    has_audio: bool
    duration_s: float | None


def open_container(path: Path, what: str = "media file") -> Any:
    """``av.open`` with errors turned into a :class:`SourceError` naming the file."""
    av = import_av()
    if not path.is_file():
        raise SourceError(f"{what} {path}: no such file")
    try:
        return av.open(str(path))
    except av.FFmpegError as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise SourceError(f"{what} {path}: cannot decode it ({reason}); "
                          "expected a video or audio file FFmpeg reads") from e


def probe_media(path: str | Path) -> MediaInfo:
    """Which streams a media file has, without decoding it."""
    p = Path(path)
    with open_container(p) as c:
        duration = c.duration / 1_000_000 if c.duration is not None else None
        return MediaInfo(p, bool(c.streams.video), bool(c.streams.audio), duration)


def _audio_blocks(container: Any) -> Iterator[tuple[float | None, np.ndarray]]:
    """(time of the decoded frame, its samples at 16 kHz mono int16) for the first audio stream."""
    av = import_av()
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    for frame in container.decode(stream):
        t = frame.time
        for out in resampler.resample(frame):
            yield t, out.to_ndarray().reshape(-1)
    for out in resampler.resample(None):
        yield None, out.to_ndarray().reshape(-1)


def _container_start(container: Any) -> float:
    start = container.start_time
    return start / 1_000_000 if start is not None else 0.0


class MediaFileSource(Source):
    """A video file (with its own audio track, or with a separate ``audio_path``), or an audio file.

    ``video`` / ``audio`` choose the modalities delivered. Errors (missing file, not decodable, no
    audio track when audio was asked for) are :class:`SourceError` naming the file.
    """

    live = False

    def __init__(self, path: str | Path, audio_path: str | Path | None = None, realtime: bool = False,
                 audio_chunk_ms: float = 20, video: bool = True, audio: bool = True) -> None:
        if not (video or audio):
            raise ValueError("MediaFileSource: at least one of video and audio must be True")
        self.path = Path(path)
        self.audio_path = Path(audio_path) if audio_path is not None else None
        self.realtime = realtime
        self.video = video
        self.audio = audio
        self._chunk = chunk_samples(audio_chunk_ms)
        self.name = f"file {self.path}" + (f" + {self.audio_path}" if self.audio_path else "")
        self._stop = threading.Event()  # one per pass, so a reopen never revives an old pass
        self._opened = False
        self._gen: Generator[Chunk, None, None] | None = None

    @property
    def has_video(self) -> bool:
        return self.video

    @property
    def has_audio(self) -> bool:
        return self.audio

    def open(self) -> None:
        """Check the file(s) and their streams; decoding starts in :meth:`chunks`."""
        with open_container(self.path) as c:
            if self.video and not c.streams.video:
                raise SourceError(f"media file {self.path}: no video stream (expected a video file; "
                                  f"for audio alone use it as the microphone, --mic {self.path})")
            if self.audio and self.audio_path is None and not c.streams.audio:
                raise SourceError(f"media file {self.path}: no audio track; give the audio separately "
                                  f"(--mic FILE.wav or a microphone) or turn audio off (--mic none)")
        if self.audio and self.audio_path is not None:
            with open_container(self.audio_path, "audio file") as c:
                if not c.streams.audio:
                    raise SourceError(f"audio file {self.audio_path}: no audio stream")
        self._opened = True

    def chunks(self) -> Iterator[Chunk]:
        """A fresh pass over the file from its start (opens it if needed)."""
        if not self._opened:
            self.open()
        self._stop = threading.Event()
        self._gen = self._generate(self._stop)
        return self._gen

    def close(self) -> None:
        """Stop the stream; safe from another thread (the decoding thread then closes the files)."""
        self._stop.set()
        self._opened = False
        gen, self._gen = self._gen, None
        if gen is not None:
            # ValueError: running in another thread, which sees the stop at its next chunk and closes the files
            with contextlib.suppress(ValueError):
                gen.close()

    def _video_frames(self, container: Any) -> Iterator[VideoFrame]:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: faster, same frames in the same order
        origin = _container_start(container)
        rate = float(stream.average_rate) if stream.average_rate else None
        for index, frame in enumerate(container.decode(stream)):
            if frame.time is not None:
                t = frame.time - origin
            elif rate:
                t = index / rate
            else:
                raise SourceError(f"media file {self.path}: "
                                  f"video frame {index} has no timestamp and the stream no frame rate")
            yield decoded_frame(max(0.0, t), frame, index)  # converted to BGR where it is used

    def _audio_chunks(self, container: Any, what: Path) -> Iterator[AudioChunk]:
        blocks = _audio_blocks(container)
        first = next(blocks, None)
        if first is None:
            raise SourceError(f"media file {what}: its audio track has no samples")
        t_first, block = first
        origin = _container_start(container)
        t0 = max(0.0, (t_first if t_first is not None else origin) - origin)
        yield from fixed_chunks(chain([block], (b for _, b in blocks)), t0, self._chunk)

    def _generate(self, stop: threading.Event) -> Generator[Chunk, None, None]:
        av = import_av()
        containers: list[Any] = []
        try:
            streams: list[Iterator[Any]] = []
            if self.audio:
                where = self.audio_path or self.path
                containers.append(open_container(where, "audio file" if self.audio_path else "media file"))
                streams.append(self._audio_chunks(containers[-1], where))
            if self.video:
                containers.append(open_container(self.path))
                streams.append(self._video_frames(containers[-1]))
            pacer = Pacer(stop)
            merged: Iterator[Chunk] = heapq.merge(*streams, key=lambda c: c.t) if len(streams) > 1 else streams[0]
            for chunk in merged:
                if stop.is_set():
                    return
                if self.realtime and not pacer.wait(chunk.t):
                    return
                yield chunk
        except av.FFmpegError as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise SourceError(f"{self.name}: decoding failed ({reason})") from e
        finally:
            for c in containers:
                c.close()
