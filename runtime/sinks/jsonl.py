"""JSONL file sink: one event per line, appended.

Durability policy: every line goes to the file with one unbuffered ``write`` on an ``O_APPEND``
descriptor (a process crash loses nothing; ``tail -f`` sees whole lines); ``os.fsync`` runs every
``fsync_every`` lines (default 50; 1 = every line, 0 = only at close) and at close, which bounds
what a power cut can take. A failed write (disk full ...) is logged once per burst naming the file
and counted in ``write_errors``; a line cut short is truncated away; the call does not raise, so
the runtime and the other sinks keep working.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edge_mmer.runtime.events import EmotionEvent, StatsMessage
from edge_mmer.runtime.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)


class JsonlSink(Sink):
    name = "jsonl"

    def __init__(self, path: Path | str, *, fsync_every: int = 50) -> None:
        if fsync_every < 0:
            raise SinkError(f"jsonl sink: fsync_every must be >= 0, got {fsync_every}")
        self.path = Path(path).expanduser()
        self.fsync_every = fsync_every
        self.emitted = 0
        self.write_errors = 0
        self._since_fsync = 0
        self._failing = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SinkError(f"jsonl sink: cannot open {self.path} for appending: {exc.strerror or exc}") from exc
        log.info("jsonl sink: appending events to %s", self.path)

    def emit(self, event: EmotionEvent) -> None:
        if self._fd is None:
            log.warning("jsonl sink %s is closed; event seq=%d not written", self.path, event.seq)
            return
        data = (event.to_json() + "\n").encode("utf-8")
        view = memoryview(data)
        start = -1
        try:
            start = os.lseek(self._fd, 0, os.SEEK_END)
            while view:  # a regular file takes it all at once unless the disk fills up
                view = view[os.write(self._fd, view):]
            self._since_fsync += 1
            if self.fsync_every and self._since_fsync >= self.fsync_every:
                os.fsync(self._fd)
                self._since_fsync = 0
        except OSError as exc:
            if 0 < len(view) < len(data) and start >= 0:
                self._cut_partial_line(start)
            self.write_errors += 1
            if not self._failing:
                self._failing = True
                log.error("jsonl sink: cannot write to %s: %s; events are lost until writes succeed again "
                          "(logged once per burst, counted)", self.path, exc.strerror or exc)
            return
        if self._failing:
            self._failing = False
            log.info("jsonl sink: writing to %s again (%d event(s) lost)", self.path, self.write_errors)
        self.emitted += 1

    def _cut_partial_line(self, size: int) -> None:
        """A line cut short by a full disk is removed, so every line in the file stays valid JSON."""
        assert self._fd is not None
        try:
            os.ftruncate(self._fd, size)
        except OSError as exc:
            log.error("jsonl sink: %s ends with a partial line (could not cut it: %s)", self.path, exc.strerror or exc)

    def publish_stats(self, stats: StatsMessage) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("stats %s", stats.to_json())

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.fsync(fd)
        except OSError as exc:
            log.error("jsonl sink: final fsync of %s failed: %s", self.path, exc.strerror or exc)
        finally:
            try:
                os.close(fd)
            except OSError as exc:
                log.error("jsonl sink: closing %s failed: %s", self.path, exc.strerror or exc)
