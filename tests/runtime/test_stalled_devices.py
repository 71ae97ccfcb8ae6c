"""Live devices that stop delivering without failing, against the real parts: a network camera on
loopback (MJPEG over HTTP, tests/support/camera_server.py) read by the real OpenCV / FFmpeg, and the
virtual ALSA microphone (tests/support/virtual_mic.py) read through PyAudio, each stalled mid-stream
with its connection or FIFO still open. A blocked native read must never race the release of its
device (that was a segfault), and the watchdog must get the device back.

Each case runs in a child interpreter: a crash in native code must fail the test, not end pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support.camera_server import MjpegCamera
from support.paths import ROOT, TESTS
from support.virtual_mic import DEVICE_NAME, PacedVirtualMic, demo_pcm

from edge_mmer.runtime.sources.base import SourceError
from edge_mmer.runtime.sources.camera import CameraSource

CAMERA_SCRIPT = r"""
import json, sys, time
from edge_mmer.runtime.sources.camera import CameraSource
from edge_mmer.runtime.watchdog import SupervisedSource

url, stale, deadline = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
sup = SupervisedSource(CameraSource(url, read_timeout_s=stale), stale_timeout_s=stale,
                       backoff_initial_s=0.1, backoff_max_s=0.4).start()
t0 = time.monotonic()
before = None
while time.monotonic() - t0 < deadline:
    s = sup.stats()
    if before is None and s["restarts"] >= 1:
        before = s["chunks"]
    if before is not None and s["chunks"] >= before + 10:
        break
    time.sleep(0.05)
s = sup.stats()
report = {"restarts": s["restarts"], "stale": s["stale"], "errors": s["errors"], "chunks": s["chunks"],
          "before": before, "recovered_s": time.monotonic() - t0}
report["joined"] = sup.stop(timeout=5)
print(json.dumps(report), flush=True)
"""


def _child(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-X", "faulthandler", "-c", script, *args], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(TESTS), **(env or {})}, capture_output=True,
                         text=True, timeout=timeout, check=False)
    assert out.returncode == 0, f"the child died (rc {out.returncode}):\n{out.stderr[-4000:]}"
    assert "Fatal Python error" not in out.stderr and "Traceback" not in out.stderr, out.stderr[-4000:]
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    report["stderr"] = out.stderr
    return report


def test_a_network_camera_that_stalls_is_restarted_without_crashing() -> None:
    """The connection stays open after 15 frames and nothing more comes (a hung Wi-Fi camera): the
    blocked read is bounded by FFmpeg's read timeout and the capture let go by the thread that read it
    (whether the watchdog saw it stale first or the failed reads raised), and the camera is reopened
    and streams again; no segfault, no traceback. Before the fix: SIGSEGV (rc -11) when FFmpeg's
    30 s timeout returned into the capture the watchdog had released."""
    with MjpegCamera(lambda n: "stall@15" if n == 1 else "stream") as cam:
        report = _child(CAMERA_SCRIPT, cam.url, "1.0", "15")
        connections = cam.connections
    assert report["restarts"] >= 1 and report["stale"] + report["errors"] >= 1, report
    assert report["before"] is not None and report["chunks"] >= report["before"] + 10, \
        f"the camera did not stream again: {report}"
    assert connections >= 2 and report["joined"], report
    assert report["recovered_s"] < 10, report  # bounded by the timeouts, not by FFmpeg's default 30 s


def test_camera_read_and_open_timeouts_are_bounded_for_network_streams() -> None:
    """A tarpit (accepts, never answers) fails the open within the open timeout, naming the camera."""
    import socket

    with socket.socket() as tarpit:
        tarpit.bind(("127.0.0.1", 0))
        tarpit.listen(4)
        url = f"http://127.0.0.1:{tarpit.getsockname()[1]}/mjpg"
        source = CameraSource(url, open_timeout_s=1.0)
        t0 = time.monotonic()
        with pytest.raises(SourceError, match="cannot open the stream"):
            source.open()
        assert time.monotonic() - t0 < 5


def test_a_fifo_as_the_camera_is_refused_at_once(tmp_path: Path) -> None:
    """``--camera`` naming a FIFO would block in open() until a writer comes (no timeout, and one
    SIGTERM per OpenCV backend to stop): it is refused before OpenCV sees it."""
    fifo = tmp_path / "cam.fifo"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="FIFO"):
        CameraSource(str(fifo)).open()
    assert time.monotonic() - t0 < 2


MIC_SCRIPT = r"""
import json, os, sys, time
from edge_mmer.runtime.sources.microphone import MicrophoneSource
from edge_mmer.runtime.watchdog import SupervisedSource

control = sys.argv[2]
sup = SupervisedSource(MicrophoneSource(sys.argv[1]), stale_timeout_s=1.0, backoff_initial_s=0.1,
                       backoff_max_s=0.3).start()

def wait(pred, timeout):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.02)
    return False

report = {"streaming": wait(lambda: sup.stats()["chunks"] >= 25, 20)}
open(control + ".pause", "w").close()  # the parent stops feeding the FIFO
report["stalled"] = wait(lambda: sup.stats()["stale"] >= 1, 10)
report["restarted_while_stalled"] = wait(lambda: sup.stats()["restarts"] >= 1, 6)
stalled_chunks = sup.stats()["chunks"]
open(control + ".resume", "w").close()
report["recovered"] = wait(lambda: sup.stats()["chunks"] >= stalled_chunks + 50, 10)
report["stats"] = {k: sup.stats()[k] for k in ("chunks", "restarts", "stale", "errors")}
report["joined"] = sup.stop(timeout=5)
print(json.dumps(report), flush=True)
"""


@pytest.mark.needs_virtual_mic
def test_a_microphone_that_stops_delivering_is_restarted_and_recovers(tmp_path: Path) -> None:
    """The virtual microphone's FIFO stays open and silent (the read blocks inside ALSA): the watchdog
    restarts the microphone while it is stalled — not only once data comes back — and capture
    resumes when the device delivers again; the capture thread stops cleanly."""
    control = tmp_path / "ctl"
    with PacedVirtualMic(tmp_path, demo_pcm()) as mic:
        proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-c", MIC_SCRIPT, DEVICE_NAME, str(control)],
                                cwd=ROOT, env={**os.environ, **mic.env}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not Path(f"{control}.pause").exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            mic.pause()
            while not Path(f"{control}.resume").exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            mic.resume()
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err[-4000:]
    assert "Fatal Python error" not in err and "Traceback" not in err, err[-4000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["streaming"] and report["stalled"], report
    assert report["restarted_while_stalled"], f"no restart during the stall: {report}"
    assert report["recovered"] and report["joined"], report
