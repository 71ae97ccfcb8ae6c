"""A wav file as the microphone (``--mic speech.wav``).

16 kHz mono 16-bit PCM is read with the standard library and cut into fixed chunks (``t`` = sample
offset / 16 000). Any other wav (another rate, stereo, 8/24/32-bit, float) is converted to 16 kHz
mono 16-bit with PyAV — logged once, so the user knows — and a file neither can read is a
:class:`SourceError` that names the file, what it holds and what is expected.
"""

from __future__ import annotations

import logging
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edge_mmer.runtime.chunks import AudioChunk, Chunk
from edge_mmer.runtime.sources.base import Source, SourceError
from edge_mmer.runtime.sources.files import MediaFileSource
from edge_mmer.runtime.sources.pacing import Pacer, chunk_samples
from edge_mmer.vocab import SAMPLE_RATE

log = logging.getLogger(__name__)

EXPECTED = "16 kHz mono 16-bit PCM"


class WavSource(Source):
    """Audio chunks from a wav file, as fast as possible or paced to real time."""

    live = False
    has_video = False
    has_audio = True

    def __init__(self, path: str | Path, realtime: bool = False, chunk_ms: float = 20) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.chunk_ms = chunk_ms
        self._chunk = chunk_samples(chunk_ms)
        self.name = f"wav {self.path}"
        self._stop = threading.Event()
        self._converted: MediaFileSource | None = None
        self._opened = False

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"wav file {self.path}: no such file")
        self._converted = None
        try:
            with wave.open(str(self.path), "rb") as w:
                rate, channels, width, frames = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        except (wave.Error, EOFError) as e:
            self._open_converted(f"not a PCM wav the standard library reads ({e})")
        else:
            if frames == 0:
                raise SourceError(f"wav file {self.path}: empty (no audio frames); expected {EXPECTED} speech")
            if (rate, channels, width) != (SAMPLE_RATE, 1, 2):
                self._open_converted(f"{rate} Hz, {channels} channel(s), {8 * width}-bit")
        self._opened = True

    def _open_converted(self, have: str) -> None:
        source = MediaFileSource(self.path, realtime=self.realtime, audio_chunk_ms=self.chunk_ms, video=False)
        try:
            source.open()
        except SourceError as e:
            raise SourceError(f"wav file {self.path}: {have}; expected {EXPECTED}, "
                              f"and PyAV could not convert it ({e})") from e
        log.info("wav file %s: %s; converting to %s", self.path, have, EXPECTED)
        self._converted = source

    def chunks(self) -> Iterator[Chunk]:
        if not self._opened:
            self.open()
        if self._converted is not None:
            return self._converted.chunks()
        self._stop = threading.Event()
        return self._read(self._stop)

    def _read(self, stop: threading.Event) -> Iterator[Chunk]:
        pacer = Pacer(stop)
        offset = 0
        with wave.open(str(self.path), "rb") as w:
            while not stop.is_set():
                data = w.readframes(self._chunk)
                if not data:
                    return
                samples = np.frombuffer(data, dtype="<i2").astype(np.int16)
                t = offset / SAMPLE_RATE
                if self.realtime and not pacer.wait(t):
                    return
                yield AudioChunk(t, samples, SAMPLE_RATE)
                offset += samples.size

    def close(self) -> None:
        self._stop.set()
        self._opened = False
        if self._converted is not None:
            self._converted.close()
