"""Face analysis beside the decision path: the tracker fed from its own thread.

Detection of camera frames costs milliseconds per analysed frame; done inline it delays every
audio chunk and so every decision behind it. The worker takes frames on a small bounded queue and
runs :meth:`FaceTracker.feed` in a thread (OpenCV and ONNX Runtime release the GIL, so on two cores
the detection and the speech networks overlap).

The queue is short (3 frames): a decision waits at most for that backlog. Files are lossless: a full
queue makes the reader wait, and a decision first waits until every frame
submitted so far has been analysed (:meth:`sync`), so the crops a decision reads are exactly those
of the inline path and streaming == offline still holds. Which frames are analysed, and when a frame
gets a full or a tracked detection, depends only on the stream clock, never on thread timing. Live
sources are drop-oldest: a full queue drops its oldest frame (counted as ``face_frames_dropped``) so
the camera never stalls the microphone.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from edge_mmer.runtime.chunks import VideoFrame
from edge_mmer.runtime.faces import FaceTracker, well_formed
from edge_mmer.runtime.stats import RuntimeStats

log = logging.getLogger(__name__)


class FaceWorker:
    """Feed frames with :meth:`submit`; :meth:`sync` before reading the tracker; :meth:`close` at the end."""

    def __init__(self, tracker: FaceTracker, stats: RuntimeStats, *, maxsize: int = 3, lossless: bool = True,
                 threaded: bool = True) -> None:
        self.tracker = tracker
        self.stats = stats
        self.maxsize = maxsize
        self.lossless = lossless
        self._cond = threading.Condition()
        self._queue: collections.deque[VideoFrame] = collections.deque()
        self._busy: float | None = None  # the time of the frame being analysed
        self._closed = False
        self._clock: float | None = None
        self.dropped = 0
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="face-worker", daemon=True)
            self._thread.start()

    @property
    def clock(self) -> float | None:
        """The latest well-formed frame time submitted: how far the camera has got (not the analysis)."""
        return self._clock

    def submit(self, frame: VideoFrame) -> None:
        if well_formed(frame):
            self._clock = frame.t if self._clock is None else max(self._clock, frame.t)
        if self._thread is None:
            self._analyse(frame)
            return
        with self._cond:
            if self.lossless:
                while len(self._queue) >= self.maxsize and not self._closed:
                    self._cond.wait()
            elif len(self._queue) >= self.maxsize:
                self._queue.popleft()
                self.dropped += 1
                self.stats.count("face_frames_dropped")
            self._queue.append(frame)
            self._cond.notify_all()

    def sync(self, until: float | None = None) -> None:
        """Wait until every frame submitted so far (of time <= ``until``, when given) has been analysed.

        A decision needs the frames up to its window's end, not the detection of later frames."""
        if self._thread is None:
            return
        with self._cond:
            while self._pending(until) and self._thread.is_alive():
                self._cond.wait(0.5)

    def _pending(self, until: float | None) -> bool:
        if until is None:
            return bool(self._queue) or self._busy is not None
        return (self._busy is not None and self._busy <= until) or any(f.t <= until for f in self._queue)

    def _analyse(self, frame: VideoFrame) -> None:
        bad = self.tracker.bad_frames
        t0 = time.perf_counter()
        obs = self.tracker.feed(frame)
        # an analysed frame (detection, tracks, crops) or another frame (its mouth motion only)
        self.stats.record("face_detection" if obs is not None else "face_motion", time.perf_counter() - t0)
        if self.tracker.bad_frames != bad:
            self.stats.count("bad_frames")
        if obs is not None:
            self.stats.count("frames_analysed")

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                frame = self._queue.popleft()
                self._busy = frame.t
                self._cond.notify_all()
            try:
                self._analyse(frame)
            except Exception:  # a face-analysis failure loses the frame, never the loop
                log.exception("face worker: frame at %.3f s could not be analysed", frame.t)
                self.stats.count("face_errors")
            finally:
                with self._cond:
                    self._busy = None
                    self._cond.notify_all()

    def close(self) -> None:
        """Analyse what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
