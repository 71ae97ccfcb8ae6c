"""The systemd notify protocol, read from a real unix datagram socket as systemd reads it: the loop
says READY=1, pings WATCHDOG=1 only while the stream moves (a stalled source stops the pings within
the watchdog period), and says STOPPING=1 at the end."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from support.demo import DEMO_CLIP
from support.events import ListSink

from edge_mmer.runtime.chunks import AudioChunk, Chunk
from edge_mmer.runtime.loop import RuntimeLoop
from edge_mmer.runtime.service.heartbeat import Heartbeat
from edge_mmer.runtime.service.notify import Notifier, watchdog_interval_s
from edge_mmer.runtime.settings import RuntimeSettings, with_run_overrides
from edge_mmer.runtime.sources.base import Source
from edge_mmer.runtime.sources.files import MediaFileSource


class NotifySocket:
    """The service manager's end: a bound ``AF_UNIX`` datagram socket, each message with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            t = time.monotonic()
            self.messages.extend((t, line) for line in data.decode().splitlines())

    def lines(self) -> list[str]:
        return [m for _, m in self.messages]

    def times(self, line: str) -> list[float]:
        return [t for t, m in self.messages if m == line]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # 0.4 s: a ping every 0.2 s while the stream moves
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def test_notifier_sends_one_datagram_per_message(tmp_path: Path) -> None:
    sock = NotifySocket(tmp_path / "n.sock")
    try:
        n = Notifier(str(sock.path))
        assert n.send(READY=1, STATUS="up\nand running") is True
        n.close()
        deadline = time.monotonic() + 2
        while len(sock.lines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sock.lines() == ["READY=1", "STATUS=up and running"]
    finally:
        sock.close()


def test_no_socket_means_no_notifier_and_a_gone_manager_never_raises(tmp_path: Path) -> None:
    assert Notifier.from_environment({}).enabled is False
    assert Notifier.from_environment({"NOTIFY_SOCKET": "vsock:2:1"}).enabled is False
    gone = Notifier(str(tmp_path / "nobody-listens.sock"))
    assert gone.send(WATCHDOG=1) is False and gone.send(WATCHDOG=1) is False


def test_watchdog_interval_from_the_environment() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}, pid=2) is None  # another process's
    assert watchdog_interval_s({"WATCHDOG_USEC": "x"}) is None


def test_heartbeat_pings_only_while_the_stream_clock_advances(tmp_path: Path) -> None:
    sock = NotifySocket(tmp_path / "h.sock")
    now = [0.0]
    try:
        hb = Heartbeat(Notifier(str(sock.path)), watchdog_s=2.0, clock=lambda: now[0])
        hb.ready("0 events")
        for step in range(10):  # 1 s per tick, the stream moving: a ping every half period
            now[0] = float(step)
            hb.progress(float(step))
            hb.tick(lambda: "x")
        moving = hb.pings
        for step in range(10, 20):  # chunks still come but the stream clock is stuck: no more pings
            now[0] = float(step)
            hb.progress(9.0)
            hb.tick(lambda: "x")
        assert moving >= 9 and hb.pings == moving
    finally:
        sock.close()


class StallingSource(Source):
    """Live audio from the demo clip, paced, that stalls (blocks until closed) after ``stall_after_s`` of wall time."""

    live = True
    has_audio = True
    has_video = False

    def __init__(self, stall_after_s: float) -> None:
        self.name = "stalling mic"
        self.stall_after_s = stall_after_s
        self.stalled_at: float | None = None
        self._closed = threading.Event()

    def open(self) -> None:
        self._closed = threading.Event()

    def chunks(self) -> Iterator[Chunk]:
        src = MediaFileSource(DEMO_CLIP, video=False)
        src.open()
        start = time.monotonic()
        try:
            for c in src.chunks():
                if time.monotonic() - start >= self.stall_after_s:
                    break
                if self._closed.wait(0.005):
                    return
                assert isinstance(c, AudioChunk)
                yield AudioChunk(c.t, np.asarray(c.samples), c.sample_rate)
        finally:
            src.close()
        self.stalled_at = time.monotonic()
        self._closed.wait()  # like a driver that hangs

    def close(self) -> None:
        self._closed.set()


def _settings() -> RuntimeSettings:
    s = with_run_overrides(RuntimeSettings(), backend="onnxruntime", stats_interval_s=0)
    return dataclasses.replace(s, watchdog=dataclasses.replace(s.watchdog, stale_timeout_s=60.0))


def test_the_loop_says_ready_pings_while_running_and_stopping_at_the_end(notify: NotifySocket) -> None:
    summary = RuntimeLoop(_settings(), sink=ListSink(), sources=[MediaFileSource(DEMO_CLIP, video=False)]).run()
    time.sleep(0.1)
    lines = notify.lines()
    assert summary.events > 0
    assert lines[0] == "READY=1"
    assert "STOPPING=1" in lines and lines.index("STOPPING=1") > lines.index("WATCHDOG=1")
    assert not [m for m in lines[lines.index("STOPPING=1"):] if m == "WATCHDOG=1"]  # none after STOPPING
    assert any(m.startswith("STATUS=") and "events" in m for m in lines)


def test_a_stalled_source_stops_the_watchdog_pings_within_the_period(notify: NotifySocket) -> None:
    source = StallingSource(stall_after_s=1.0)
    stop = threading.Event()
    loop = RuntimeLoop(_settings(), sink=ListSink(), sources=[source])
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while source.stalled_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert source.stalled_at is not None
        time.sleep(1.2)  # three watchdog periods of silence expected
    finally:
        stop.set()
        thread.join(20)
    pings = notify.times("WATCHDOG=1")
    assert len(pings) >= 3, notify.lines()  # it pinged while audio flowed
    assert pings[-1] <= source.stalled_at + 0.4  # and stopped within WatchdogSec of the stall
    assert "STOPPING=1" in notify.lines()
