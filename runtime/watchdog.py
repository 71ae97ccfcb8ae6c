"""Supervision of a source: a capture thread, a bounded queue, and a watchdog that restarts it.

:class:`SupervisedSource` runs one :class:`~edge_mmer.runtime.sources.base.Source` in its own capture
thread and puts its chunks into a :class:`~edge_mmer.runtime.queues.DropOldestQueue`. A live source
(camera, microphone) that raises, ends, or goes stale — no chunk for ``stale_timeout_s`` — is
restarted: the watchdog thread closes it (which ends a read stuck in the driver when the driver allows
it), and the capture thread reopens it after an exponential backoff (``backoff_initial_s`` doubling up to
``backoff_max_s``; back to the initial delay once a run has stayed healthy for ``healthy_after_s``, or
for twice the delay before it and :data:`MIN_UP_S` at least).
This is the camera watchdog of NVR software such as Frigate: a stale-frame timeout and paced restarts,
so an unplugged device is retried without spinning.

A read that stays blocked in native code after the close (a PortAudio read on a driver that stopped
delivering; an FFmpeg read past its timeout) is never raced: its capture thread is left to finish
alone — it releases its own device handles when the read returns, and anything it read then is
dropped — and a fresh capture thread reopens the device after the backoff. At most
:data:`MAX_STUCK_THREADS` such threads are left at once; past that the watchdog waits for one to
return before it tries again. ``stats()["abandoned"]`` counts them.

A file source is not restarted: its end (or an error, which would only repeat) is the end of the
stream — the queue is closed, and consumers see :class:`~edge_mmer.runtime.queues.QueueClosed`. By
default a file source also waits for room in the queue instead of dropping chunks (``lossless``).
Audio and video each get their own ``SupervisedSource``; they may share a queue made with
``DropOldestQueue(maxsize, producers=2)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_mmer.runtime.chunks import Chunk
from edge_mmer.runtime.queues import DropOldestQueue
from edge_mmer.runtime.sources.base import CLOSE_GRACE_S, Source, SourceError

log = logging.getLogger(__name__)

MIN_UP_S = 1.0
"""A run must stay up at least this long (and twice its backoff) to reset the backoff early."""

MAX_STUCK_THREADS = 3
"""Capture threads left blocked in a driver at once, before the watchdog waits for one to return."""


@dataclass(frozen=True)
class Restart:
    """One restart, as reported to ``on_restart``."""

    source: str
    restarts: int  # count so far, this one included
    reason: str  # "error" | "stale" | "ended"
    error: str | None
    delay_s: float  # the backoff before the reopen


class Backoff:
    """Exponential delays: ``initial``, ``2 * initial``, … capped at ``maximum``; ``reset()`` starts over."""

    def __init__(self, initial: float, maximum: float) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError(f"Backoff: expected 0 < initial <= maximum, got {initial}, {maximum}")
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * 2)
        return delay

    def peek(self) -> float:
        return self._next

    def reset(self) -> None:
        self._next = self.initial


class SupervisedSource:
    """A source in a capture thread, watched for errors and staleness, restarted with backoff.

    ``start()`` launches the threads, ``stop()`` closes the source and joins them; ``stats()`` reports
    chunks, restarts, stale detections, the last error and the queue's drops. ``on_restart`` is
    called (from the capture thread) before each backoff delay.
    """

    def __init__(self, source: Source, queue: DropOldestQueue[Chunk] | None = None, *, maxsize: int = 256,
                 stale_timeout_s: float = 5.0, backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 healthy_after_s: float = 10.0, on_restart: Callable[[Restart], None] | None = None,
                 lossless: bool | None = None) -> None:
        if stale_timeout_s <= 0:
            raise ValueError(f"SupervisedSource: stale_timeout_s must be > 0, got {stale_timeout_s}")
        self.source = source
        self.queue: DropOldestQueue[Chunk] = queue if queue is not None else DropOldestQueue(maxsize)
        self.stale_timeout_s = stale_timeout_s
        self.healthy_after_s = healthy_after_s
        self.backoff = Backoff(backoff_initial_s, backoff_max_s)
        self.on_restart = on_restart
        self.lossless = (not source.live) if lossless is None else lossless
        self.restart_delays: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._queue_closed = False
        self._streaming = False
        self._stale = False
        self._last_progress = time.monotonic()
        self._chunks = 0
        self._restarts = 0
        self._stale_count = 0
        self._errors = 0
        self._abandoned = 0
        self._gen = 0  # the capture thread's generation: an abandoned one sees a newer one and goes quiet
        self._active_gen: int | None = None  # the generation inside _one_run now
        self._stuck: list[threading.Thread] = []
        self._last_error: str | None = None
        self._state = "new"
        self._capture: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> SupervisedSource:
        if self._capture is not None:
            raise RuntimeError(f"{self.source.name}: already started")
        self._capture = threading.Thread(target=self._run, args=(0,), name=f"capture:{self.source.name}",
                                         daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name=f"watchdog:{self.source.name}", daemon=True)
        self._capture.start()
        self._watchdog.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Close the source and join the threads; False when the capture thread did not come back."""
        self._stop.set()
        self._close_source()
        joined = True
        for thread in (self._watchdog, self._capture):
            if thread is not None:
                thread.join(timeout)
                if thread.is_alive():
                    joined = False
                    log.warning("%s: %s did not stop within %.1f s", self.source.name, thread.name, timeout)
        deadline = time.monotonic() + timeout
        for thread in self._stuck:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = sum(t.is_alive() for t in self._stuck)
        if stuck:
            joined = False
            log.warning("%s: %d capture thread(s) still blocked in the driver at stop", self.source.name, stuck)
        self._close_queue()
        self._state = "stopped"
        return joined

    def __enter__(self) -> SupervisedSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def finished(self) -> bool:
        """The stream is over (a file ended, or ``stop()`` was called) and the capture thread is done."""
        return self._done.is_set()

    @property
    def streaming(self) -> bool:
        """The source is open and delivering (False while it is being reopened, in backoff, or ended)."""
        with self._lock:
            return self._streaming

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the end of the stream; True when it ended."""
        return self._done.wait(timeout)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "source": self.source.name,
                "live": self.source.live,
                "state": self._state,
                "chunks": self._chunks,
                "restarts": self._restarts,
                "stale": self._stale_count,
                "errors": self._errors,
                "abandoned": self._abandoned,
                "last_error": self._last_error,
                "drops": self.queue.dropped,
                "queued": len(self.queue),
                "next_backoff_s": self.backoff.peek(),
                "bad_frames": getattr(self.source, "bad_frames", None),
            }

    # -- capture thread -----------------------------------------------------------------------------

    def _current(self, gen: int) -> bool:
        with self._lock:
            return gen == self._gen

    def _run(self, gen: int, first_delay: float = 0.0) -> None:
        try:
            if first_delay and self._stop.wait(first_delay):
                return
            while not self._stop.is_set() and self._current(gen):
                reason, error = self._one_run(gen)
                if self._stop.is_set() or not self._current(gen):
                    break
                if not self.source.live:
                    if reason != "ended":
                        log.error("%s: %s; the file is not replayed, end of stream", self.source.name,
                                  error or "stalled")
                    else:
                        log.info("%s: end of stream", self.source.name)
                    break
                delay = self.backoff.next()
                with self._lock:
                    self._restarts += 1
                    self._state = "backoff"
                    restarts = self._restarts
                self.restart_delays.append(delay)
                log.warning("%s: %s%s; restart %d in %.1f s", self.source.name, reason,
                            f" ({error})" if error else "", restarts, delay)
                if self.on_restart is not None:
                    try:
                        self.on_restart(Restart(self.source.name, restarts, reason, error, delay))
                    except Exception:
                        log.exception("%s: on_restart callback failed", self.source.name)
                if self._stop.wait(delay):
                    break
        finally:
            if self._current(gen):
                self._finish()

    def _finish(self) -> None:
        self._close_queue()
        with self._lock:
            self._state = "stopped" if self._stop.is_set() else "ended"
        self._done.set()

    def _one_run(self, gen: int) -> tuple[str, str | None]:
        """Open the source and pump its chunks: ("ended" | "error" | "stale", error text)."""
        with self._lock:
            self._stale = False
            self._state = "opening"
            self._active_gen = gen
        try:
            self.source.open()
            self._mark_progress(streaming=True)
            run_start = time.monotonic()
            healthy = False
            # up for healthy_after_s, or for longer than twice the wait before it (and a second at
            # least): a camera that drops every few seconds is retried fast, not after 30 s
            waited = self.restart_delays[-1] if self.restart_delays else 0.0
            up_enough = min(self.healthy_after_s, max(MIN_UP_S, 2 * waited))
            for chunk in self.source.chunks():
                if self._stop.is_set() or not self._current(gen):
                    break
                self._put(chunk)
                with self._lock:
                    self._chunks += 1
                self._mark_progress()
                if not healthy and time.monotonic() - run_start >= up_enough:
                    healthy = True
                    self.backoff.reset()
        except Exception as e:
            if not self._current(gen):
                return "ended", None
            if self._stale or self._stop.is_set():
                return ("stale", None) if self._stale else ("ended", None)
            text = str(e) if isinstance(e, SourceError) else f"{type(e).__name__}: {e}"
            with self._lock:
                self._errors += 1
                self._last_error = text
            return "error", text
        finally:
            with self._lock:
                current = gen == self._gen
                if current:
                    self._streaming = False
                    self._active_gen = None
            if current:
                self._close_source()
        return ("stale", None) if self._stale else ("ended", None)

    def _put(self, chunk: Chunk) -> None:
        if not self.lossless:
            self.queue.put(chunk)
            return
        while not self._stop.is_set():
            if self.queue.put_wait(chunk, timeout=0.1):
                return
            if self.queue.closed:
                return
            self._mark_progress()  # waiting for the consumer is not a stall

    def _mark_progress(self, streaming: bool | None = None) -> None:
        with self._lock:
            self._last_progress = time.monotonic()
            if streaming is not None:
                self._streaming = streaming
                self._state = "streaming" if streaming else self._state

    def _close_source(self) -> None:
        try:
            self.source.close()
        except Exception:
            log.exception("%s: close failed", self.source.name)

    def _close_queue(self) -> None:
        with self._lock:
            if self._queue_closed:
                return
            self._queue_closed = True
        self.queue.close()

    # -- watchdog thread ----------------------------------------------------------------------------

    def _watch(self) -> None:
        period = min(0.5, self.stale_timeout_s / 4)
        closed_at: float | None = None
        while not self._stop.wait(period) and not self._done.is_set():
            with self._lock:
                stuck = self._stale and self._active_gen == self._gen
            overdue = closed_at is not None and time.monotonic() - closed_at >= CLOSE_GRACE_S
            if not stuck or (overdue and self._replace_capture()):
                closed_at = None
            with self._lock:
                idle = time.monotonic() - self._last_progress
                stale = self._streaming and not self._stale and idle > self.stale_timeout_s
                if stale:
                    self._stale = True
                    self._stale_count += 1
                    self._last_error = f"no chunk for {idle:.1f} s (stale)"
            if stale:
                log.warning("%s: no chunk for %.1f s; closing it to restart", self.source.name, idle)
                self._close_source()
                closed_at = time.monotonic()

    def _replace_capture(self) -> bool:
        """The capture thread is still blocked in the driver after the close: leave it (it releases its
        device when its read returns) and start a fresh one after the backoff. False: too many are
        stuck already; try again later."""
        self._stuck = [t for t in self._stuck if t.is_alive()]
        if len(self._stuck) >= MAX_STUCK_THREADS:
            return False
        delay = self.backoff.next()
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._active_gen = None
            self._streaming = False
            self._restarts += 1
            self._abandoned += 1
            self._state = "backoff"
            restarts = self._restarts
        if self._capture is not None:
            self._stuck.append(self._capture)
        self.restart_delays.append(delay)
        log.warning("%s: its read is still blocked in the driver; leaving that thread to finish on its own and "
                    "reopening in a new one: restart %d in %.1f s", self.source.name, restarts, delay)
        if self.on_restart is not None:
            try:
                self.on_restart(Restart(self.source.name, restarts, "stale", None, delay))
            except Exception:
                log.exception("%s: on_restart callback failed", self.source.name)
        self._capture = threading.Thread(target=self._run, args=(gen, delay), name=f"capture:{self.source.name}",
                                         daemon=True)
        self._capture.start()
        return True
