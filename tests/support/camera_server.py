"""A network camera on loopback for the tests: MJPEG over HTTP (``multipart/x-mixed-replace``), the
format of most cheap IP cameras, read by the real OpenCV / FFmpeg through ``http://127.0.0.1:PORT/mjpg``.

Each connection follows a script (``plan(n)`` for the n-th connection, from 1):

* ``"stream"``: frames at ``fps`` until the server stops;
* ``"stall@N"``: N frames, then the connection stays open and silent (the TCP peer is alive, no data:
  a Wi-Fi camera that hung, an RTSP server that froze) until the server stops;
* ``"close@N"``: N frames, then the server closes the connection (a camera that rebooted).

The frames are the demo clip's (real JPEGs, a face in view). ``connections``, ``frames_sent`` and
``stalled`` (connections now held silent) let a test see what the client did. Loopback only, one
thread per connection; ``stop()`` ends every connection, stalled ones included.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2

from .demo import demo_av

BOUNDARY = "edgemmerframe"


@functools.lru_cache(maxsize=1)
def demo_jpegs(count: int = 45, width: int = 320) -> tuple[bytes, ...]:
    """The demo clip's first ``count`` frames, downscaled to ``width`` and JPEG-encoded."""
    _, frames = demo_av()
    out = []
    for frame in frames[:count]:
        h, w = frame.image.shape[:2]
        small = cv2.resize(frame.image, (width, round(h * width / w)))
        ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
        assert ok
        out.append(data.tobytes())
    return tuple(out)


class MjpegCamera:
    """See the module docstring. A context manager: ``with MjpegCamera(plan) as cam: cam.url``."""

    def __init__(self, plan: Callable[[int], str] = lambda n: "stream", fps: float = 15.0) -> None:
        self.plan = plan
        self.fps = fps
        self.jpegs = demo_jpegs()
        self.connections = 0
        self.frames_sent = 0
        self.stalled = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                camera._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mjpg"

    def __enter__(self) -> MjpegCamera:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mjpeg-camera", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.connections += 1
            action = self.plan(self.connections)
        kind, _, count = action.partition("@")
        limit = int(count) if count else None
        handler.send_response(200)
        handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        sent, due, held = 0, time.monotonic(), False
        try:
            while not self._stop.is_set() and (limit is None or sent < limit):
                jpeg = self.jpegs[sent % len(self.jpegs)]
                handler.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                                    .encode("ascii") + jpeg + b"\r\n")
                handler.wfile.flush()
                sent += 1
                with self._lock:
                    self.frames_sent += 1
                due += 1.0 / self.fps
                self._stop.wait(max(0.0, due - time.monotonic()))
            if kind == "stall":
                with self._lock:
                    self.stalled += 1
                held = True
                self._stop.wait()  # the socket stays open, nothing more is sent
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            return
        finally:
            if held:
                with self._lock:
                    self.stalled -= 1
