"""What every source shares about time and decoding: chunk sizes on the sample clock, pacing to
the wall clock, and the PyAV import.

Every source delivers audio at :data:`~edge_mmer.vocab.SAMPLE_RATE`, mono int16, in chunks of a
whole number of samples (:func:`chunk_samples`). A file source paced to real time releases each
chunk at ``start + t`` on the wall clock (:class:`Pacer`), as a camera and a microphone would.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from edge_mmer.runtime.sources.base import SourceError
from edge_mmer.vocab import SAMPLE_RATE

__all__ = ["Pacer", "chunk_samples", "import_av"]


def import_av() -> Any:
    """PyAV, or a :class:`SourceError` that says how to install it."""
    try:
        import av
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise SourceError("reading media files needs PyAV (the 'av' package): pip install edge-mmer[capture]") from e
    return av


def chunk_samples(chunk_ms: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Samples per chunk; ``chunk_ms`` must give a whole number of samples."""
    n = chunk_ms * sample_rate / 1000
    if n < 1 or n != int(n):
        raise ValueError(f"chunk_ms={chunk_ms} gives {n} samples at {sample_rate} Hz; expected a whole number >= 1")
    return int(n)


class Pacer:
    """Releases items at ``start + t`` on the wall clock; the first item goes at once.

    ``wait(t)`` returns False as soon as ``stop`` is set, so ``close()`` from another thread ends a
    paced stream without waiting for the next chunk's time.
    """

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._start: float | None = None

    def wait(self, t: float) -> bool:
        now = time.monotonic()
        if self._start is None:
            self._start = now - t
        delay = self._start + t - now
        if delay > 0:
            return not self._stop.wait(delay)
        return not self._stop.is_set()
