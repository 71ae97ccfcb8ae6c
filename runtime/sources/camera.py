"""A camera through OpenCV: a device index, a file, an RTSP/HTTP stream or a GStreamer pipeline.

``spec`` forms:

* ``0`` (an int): ``/dev/video0`` through V4L2 (USB webcams).
* ``"rtsp://user:pass@192.168.1.20:554/stream1"`` / ``"http://…"``: a network camera (FFmpeg backend).
* a string containing ``!``: a GStreamer pipeline ending in ``appsink`` (OpenCV must be built with
  GStreamer — JetPack's system OpenCV is, the pip ``opencv-python-headless`` wheel is not). A Jetson
  CSI camera::

      nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 !
      nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR !
      appsink drop=true max-buffers=1

* a path to a video file (``live`` is False then; ``t`` is the frame's media time).

A live camera stamps each frame with ``time.monotonic()`` right after the read. Frames that are not a
non-empty ``(H, W, 3)`` uint8 image of the size the stream started with are skipped and counted in
``bad_frames`` (grey and BGRA frames are converted to BGR). ``close()`` may be called from another
thread to end a blocked read.

A network stream's reads and open are bounded (``read_timeout_s``, ``open_timeout_s``: FFmpeg's
interrupt callback, ``CAP_PROP_READ_TIMEOUT_MSEC`` / ``CAP_PROP_OPEN_TIMEOUT_MSEC``): a camera that
keeps its connection open and sends nothing makes the read fail within the timeout, in the thread
that made it, which then releases the capture itself. The capture is never released under a read
in progress (see :class:`~edge_mmer.runtime.sources.base.LiveSource`). A FIFO is refused at once:
OpenCV's open would block in it until a writer came.
"""

from __future__ import annotations

import logging
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge_mmer.runtime.chunks import Chunk, VideoFrame
from edge_mmer.runtime.sources.base import LiveSource, ReadPass, SourceError

log = logging.getLogger(__name__)


def redact(spec: str) -> str:
    """A URL with its password hidden, for logs and errors."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", spec)


def _is_pipeline(spec: str) -> bool:
    return "!" in spec


def _is_url(spec: str) -> bool:
    return "://" in spec


class CameraSource(LiveSource):
    """Video frames from ``cv2.VideoCapture``.

    ``fps_cap`` drops frames (not counted as bad) so that at most that many per second are passed
    on. ``max_failed_reads`` consecutive failed reads of a live camera raise :class:`SourceError`
    (a watchdog then reopens it); for a file a failed read is the end of the stream.
    """

    has_video = True
    has_audio = False

    def __init__(self, spec: int | str, fps_cap: float | None = None, max_failed_reads: int = 25,
                 pipeline: bool | None = None, open_timeout_s: float = 10.0, read_timeout_s: float = 5.0) -> None:
        super().__init__()
        if isinstance(spec, str) and spec.strip().isdigit():
            spec = int(spec)
        self.spec = spec
        self.fps_cap = fps_cap
        self.max_failed_reads = max_failed_reads
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        # a GStreamer pipeline: said (gst:PIPELINE), or a string with a '!' in it
        self.pipeline = isinstance(spec, str) and (_is_pipeline(spec) if pipeline is None else pipeline)
        self.is_file = isinstance(spec, str) and not self.pipeline and not _is_url(spec) and Path(spec).is_file()
        self.live = not self.is_file
        if isinstance(spec, int):
            self.name = f"camera {spec}"
        elif self.pipeline:
            self.name = "camera pipeline"
        else:
            self.name = f"camera {redact(spec)}"
        self.bad_frames = 0
        self.skipped_frames = 0
        self.frames = 0
        self._cap: Any = None
        self._size: tuple[int, int] | None = None
        self._next_due: float | None = None

    # -- device -------------------------------------------------------------------------------------

    def open(self) -> None:
        self._new_pass()
        spec = self.spec
        if isinstance(spec, str) and not self.pipeline and not _is_url(spec) and not Path(spec).exists():
            raise SourceError(f"{self.name}: no such file or device (expected a camera index such as 0, "
                              f"a video file, an rtsp:// URL or a GStreamer pipeline)")
        local = isinstance(spec, str) and not self.pipeline and not _is_url(spec)
        if local and stat.S_ISFIFO(Path(str(spec)).stat().st_mode):
            raise SourceError(f"camera {spec}: is a FIFO (a named pipe), not a video device or file; OpenCV would "
                              f"wait in it for a writer forever")
        if isinstance(spec, str) and self.pipeline:
            cap = cv2.VideoCapture(spec, cv2.CAP_GSTREAMER)
        elif isinstance(spec, str) and _is_url(spec):
            cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, round(self.open_timeout_s * 1000),
                                    cv2.CAP_PROP_READ_TIMEOUT_MSEC, round(self.read_timeout_s * 1000)])
        else:
            cap = cv2.VideoCapture(spec)
        if not cap.isOpened():
            cap.release()
            raise SourceError(self._open_error())
        with self._lock:
            self._cap = cap
        self._size = None
        self._next_due = None
        log.info("%s: opened (%s)", self.name, cap.getBackendName())

    def _open_error(self) -> str:
        spec = self.spec
        if isinstance(spec, int):
            return (f"camera {spec}: cannot open video device {spec} (is it connected? is another program using it? "
                    f"try --camera 0, and ls /dev/video*)")
        if self.pipeline:
            gst = re.search(r"GStreamer:\s*(\S+)", cv2.getBuildInformation())
            built = gst.group(1) if gst else "unknown"
            return (f"camera pipeline '{spec}': cannot open it (this OpenCV's GStreamer support: {built}; the pip "
                    f"opencv wheels have none — use the system OpenCV on a Jetson; test the pipeline with "
                    f"gst-launch-1.0 and end it in appsink)")
        if _is_url(spec):
            return f"camera {redact(spec)}: cannot open the stream (check the URL, the credentials and the network)"
        return f"camera {spec}: cannot open it (not a video device or a video file OpenCV can read)"

    def _holds_device(self) -> bool:
        return self._cap is not None

    def _detach(self) -> Any:
        cap, self._cap = self._cap, None
        return cap

    def _release_handles(self, handles: Any) -> None:
        handles.release()

    # -- frames -------------------------------------------------------------------------------------

    def _read(self) -> tuple[bool, np.ndarray | None]:
        """One ``VideoCapture.read`` (a seam: tests subclass it to inject damaged frames)."""
        with self._lock:
            cap = self._cap
        if cap is None:
            return False, None
        ok, image = cap.read()
        return bool(ok), image

    def _frame_time(self) -> float:
        if self.live:
            return time.monotonic()

        cap = self._cap
        return float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0 if cap is not None else 0.0

    def _valid(self, image: Any) -> np.ndarray | None:
        """The frame as (H, W, 3) uint8 BGR, or None when it is garbage."""
        if not isinstance(image, np.ndarray) or image.size == 0 or image.dtype != np.uint8:
            return None
        if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 4)):
            code = cv2.COLOR_BGRA2BGR if image.ndim == 3 and image.shape[2] == 4 else cv2.COLOR_GRAY2BGR
            image = cv2.cvtColor(image, code)
        if image.ndim != 3 or image.shape[2] != 3:
            return None
        size = (image.shape[0], image.shape[1])
        if self._size is None:
            self._size = size
        elif size != self._size:
            return None
        bgr: np.ndarray = image
        return bgr

    def _capped(self, t: float) -> bool:
        """True when ``fps_cap`` says to drop this frame."""
        if not self.fps_cap:
            return False
        period = 1.0 / self.fps_cap
        if self._next_due is not None and t < self._next_due - 0.1 * period:
            return True
        self._next_due = max((self._next_due or t) + period, t)
        return False

    def chunks(self) -> Iterator[Chunk]:
        if self._cap is None:
            self.open()
        return self._frames(self._pass)

    def _frames(self, stop: ReadPass) -> Iterator[Chunk]:
        failed = 0
        while self._begin_read(stop):
            try:
                ok, image = self._read()
                t = self._frame_time()
            finally:
                self._end_read(stop)
            if stop.is_set():
                return
            if not ok:
                if not self.live:
                    return  # end of the file
                self.bad_frames += 1
                failed += 1
                if failed >= self.max_failed_reads:
                    raise SourceError(f"{self.name}: {failed} reads in a row failed (device unplugged or stream lost?)")
                stop.wait(0.01)
                continue
            frame = self._valid(image)
            if frame is None:
                self.bad_frames += 1
                log.debug("%s: skipped a damaged frame (%d so far)", self.name, self.bad_frames)
                continue
            failed = 0
            if self._capped(t):
                self.skipped_frames += 1
                continue
            yield VideoFrame(t, frame, self.frames)
            self.frames += 1
