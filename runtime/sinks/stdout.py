"""stdout sink: one compact JSON line per event, flushed per line (stdout carries events only)."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TextIO

from edge_mmer.runtime.events import EmotionEvent, StatsMessage
from edge_mmer.runtime.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)


class StdoutSink(Sink):
    """Writes ``event.to_json()`` + newline to ``stream`` (default: ``sys.stdout`` at write time).

    Stats never go to the stream: they are logged at DEBUG (the log goes to stderr). A stream the
    reader has closed (``BrokenPipeError``, e.g. ``edge-mmer run | head``) raises :class:`SinkError`
    so the caller can stop: nobody is listening any more.
    """

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._closed = False
        self.emitted = 0

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def emit(self, event: EmotionEvent) -> None:
        if self._closed:
            log.warning("stdout sink is closed; event seq=%d not written", event.seq)
            return
        line = event.to_json() + "\n"
        try:
            self.stream.write(line)
            self.stream.flush()
        except BrokenPipeError as exc:
            raise SinkError("stdout was closed by its reader (broken pipe); no one receives events any more") from exc
        except OSError as exc:
            raise SinkError(f"cannot write events to stdout: {exc}") from exc
        self.emitted += 1

    def publish_stats(self, stats: StatsMessage) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("stats %s", stats.to_json())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stdout has nothing left to flush
            self.stream.flush()
