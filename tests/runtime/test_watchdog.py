"""The drop-oldest queue and the source watchdog: real threads, real timeouts (small ones), scripted sources
that fail the ways devices do (raise, stall, vanish), and a real media file for end-of-stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypedDict

import numpy as np
import pytest
from support.paths import DEMO_CLIP

from edge_mmer.runtime.chunks import AudioChunk, Chunk, VideoFrame
from edge_mmer.runtime.queues import DropOldestQueue, Empty, QueueClosed
from edge_mmer.runtime.sources.base import Source, SourceError
from edge_mmer.runtime.sources.files import MediaFileSource
from edge_mmer.runtime.watchdog import Backoff, Restart, SupervisedSource

DEMO = DEMO_CLIP


class Backoffs(TypedDict):
    backoff_initial_s: float
    backoff_max_s: float


FAST: Backoffs = {"backoff_initial_s": 0.01, "backoff_max_s": 0.08}


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until true (a liveness bound, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return bool(condition())


def chunk(i: int) -> AudioChunk:
    return AudioChunk(i * 0.02, np.full(320, i % 1000, dtype=np.int16), 16_000)


# -- DropOldestQueue -----------------------------------------------------------------------------------

def test_full_queue_drops_the_oldest_and_counts() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(3)
    assert [q.put(i) for i in range(5)] == [False, False, False, True, True]
    assert q.dropped == 2 and len(q) == 3
    assert [q.get(), q.get(), q.get()] == [2, 3, 4]


def test_get_times_out_and_close_ends_the_stream() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(2)
    with pytest.raises(Empty):
        q.get(timeout=0.05)
    q.put(1)
    q.close()
    assert q.closed and q.put(2) is False  # puts after close are discarded
    assert q.get(timeout=1) == 1  # drained first
    with pytest.raises(QueueClosed):
        q.get(timeout=1)


def test_close_wakes_a_waiting_consumer() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(2)
    seen: list[object] = []

    def consume() -> None:
        try:
            q.get()
        except QueueClosed as e:
            seen.append(e)

    consumer = threading.Thread(target=consume)
    consumer.start()
    time.sleep(0.05)
    q.close()
    consumer.join(5)
    assert not consumer.is_alive() and len(seen) == 1


def test_a_shared_queue_ends_when_every_producer_closed() -> None:
    q: DropOldestQueue[str] = DropOldestQueue(10, producers=2)
    q.put("audio")
    q.close()
    q.put("video")  # the second producer is still open
    assert list_available(q) == ["audio", "video"]
    with pytest.raises(Empty):
        q.get(timeout=0.02)
    q.close()
    assert list(q) == []


def list_available(q: DropOldestQueue[str]) -> list[str]:
    out = []
    while True:
        try:
            out.append(q.get(timeout=0.01))
        except (Empty, QueueClosed):
            return out


def test_put_wait_waits_for_room() -> None:
    q: DropOldestQueue[int] = DropOldestQueue(1)
    q.put(0)
    assert q.put_wait(1, timeout=0.05) is False  # full: nothing dropped
    got: list[int] = []

    def consume() -> None:
        time.sleep(0.05)
        got.append(q.get())

    consumer = threading.Thread(target=consume)
    consumer.start()
    assert q.put_wait(1, timeout=5) is True
    consumer.join(5)
    assert got == [0] and q.get() == 1 and q.dropped == 0


def test_concurrent_producers_lose_nothing_but_the_counted_drops() -> None:
    q: DropOldestQueue[tuple[int, int]] = DropOldestQueue(50, producers=4)
    received: list[tuple[int, int]] = []
    consumer = threading.Thread(target=lambda: received.extend(q))

    def produce(p: int) -> None:
        for i in range(2000):
            q.put((p, i))
        q.close()

    consumer.start()
    producers = [threading.Thread(target=produce, args=(p,)) for p in range(4)]
    for t in producers:
        t.start()
    for t in producers:
        t.join(10)
    consumer.join(10)
    assert not consumer.is_alive()
    assert len(received) + q.dropped == 8000 == q.put_count
    for p in range(4):
        mine = [i for who, i in received if who == p]
        assert mine == sorted(mine)  # FIFO per producer


# -- scripted sources: the ways a device fails ---------------------------------------------------------

class ScriptedSource(Source):
    """A live source whose every run (open → chunks) follows ``script(run)``:
    ``"raise@N"`` raises after N chunks, ``"stall@N"`` blocks after N chunks until closed,
    ``"end@N"`` ends after N chunks, ``"open-fails"`` fails in open, ``"stream"`` streams until closed."""

    live = True
    kind = "video"
    has_video = True
    has_audio = False

    def __init__(self, script: Callable[[int], str], pace_s: float = 0.002) -> None:
        self.name = "scripted"
        self.script = script
        self.pace_s = pace_s
        self.runs = 0
        self.opens = 0
        self.closes = 0
        self._closed = threading.Event()
        self._n = 0

    def open(self) -> None:
        self.runs += 1
        if self.script(self.runs) == "open-fails":
            raise SourceError(f"{self.name}: device not found")
        self.opens += 1
        self._closed = threading.Event()

    def chunks(self) -> Iterator[Chunk]:
        action = self.script(self.runs)
        kind, _, count = action.partition("@")
        closed = self._closed
        for _ in range(int(count) if count else 10**9):
            if closed.wait(self.pace_s):
                return
            self._n += 1
            yield chunk(self._n)
        if kind == "raise":
            raise SourceError(f"{self.name}: read failed (simulated unplug)")
        if kind == "stall":
            closed.wait()  # blocks like a dead driver until the watchdog closes us
            raise SourceError(f"{self.name}: read aborted by close")

    def close(self) -> None:
        self.closes += 1
        self._closed.set()


def drain(sup: SupervisedSource, n: int, timeout: float = 10.0) -> list[Chunk]:
    got: list[Chunk] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        try:
            got.append(sup.queue.get(timeout=0.05))
        except (Empty, QueueClosed):
            if sup.queue.closed and not len(sup.queue):
                break
    return got


def test_a_source_that_raises_is_restarted_and_keeps_delivering() -> None:
    restarts: list[Restart] = []
    source = ScriptedSource(lambda run: "raise@5" if run <= 2 else "stream")
    with SupervisedSource(source, stale_timeout_s=5, on_restart=restarts.append, **FAST) as sup:
        got = drain(sup, 30)
        stats = sup.stats()
    assert len(got) == 30  # chunks kept coming after two failures
    assert stats["restarts"] == 2 and stats["errors"] == 2 and source.opens == 3
    assert stats["last_error"] == "scripted: read failed (simulated unplug)"
    assert [(r.reason, r.restarts) for r in restarts] == [("error", 1), ("error", 2)]
    assert restarts[0].error == "scripted: read failed (simulated unplug)"


def test_a_stalled_source_is_detected_closed_and_reopened() -> None:
    restarts: list[Restart] = []
    source = ScriptedSource(lambda run: "stall@3" if run == 1 else "stream")
    with SupervisedSource(source, stale_timeout_s=0.3, on_restart=restarts.append, **FAST) as sup:
        got = drain(sup, 20)
        stats = sup.stats()
    assert len(got) == 20
    assert stats["stale"] == 1 and stats["restarts"] == 1 and source.opens == 2
    assert restarts[0].reason == "stale"
    assert "stale" in (stats["last_error"] or "")


def test_a_live_source_that_ends_is_restarted() -> None:
    source = ScriptedSource(lambda run: "end@4" if run == 1 else "stream")
    with SupervisedSource(source, **FAST) as sup:
        assert len(drain(sup, 10)) == 10
        assert sup.stats()["restarts"] == 1 and not sup.finished


def test_backoff_grows_to_its_cap_and_resets_after_a_healthy_run() -> None:
    b = Backoff(0.5, 30)
    assert [b.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    b.reset()
    assert b.next() == 0.5

    # a device that is gone for six attempts, then healthy long enough, then gone again
    def script(run: int) -> str:
        return "open-fails" if run <= 6 or run >= 8 else "stream"

    source = ScriptedSource(script)
    sup = SupervisedSource(source, stale_timeout_s=5, healthy_after_s=0.1, **FAST)
    sup.start()
    assert wait_for(lambda: source.opens == 1)
    time.sleep(0.2)  # a healthy run: the backoff starts over
    source.close()
    assert wait_for(lambda: len(sup.restart_delays) >= 9)
    sup.stop()
    assert sup.restart_delays[:6] == [0.01, 0.02, 0.04, 0.08, 0.08, 0.08]
    assert sup.restart_delays[6:9] == [0.01, 0.02, 0.04]
    assert sup.stats()["last_error"] == "scripted: device not found"


def test_a_device_that_drops_every_few_seconds_keeps_a_short_backoff() -> None:
    """B16: a camera that streams ~1.2 s then drops, again and again. Before the fix healthy_after_s
    (10 s) was never reached and the backoff doubled each time (0.5, 1, 2 ... 30 s on a real camera)."""
    source = ScriptedSource(lambda run: "raise@600")  # 600 chunks, 2 ms apart: up 1.2 s
    sup = SupervisedSource(source, stale_timeout_s=5, healthy_after_s=10, **FAST).start()
    assert wait_for(lambda: len(sup.restart_delays) >= 2, 15)
    sup.stop()
    assert sup.restart_delays[:2] == [0.01, 0.01]  # before: 0.01, 0.02, 0.04, ...


def test_stop_joins_cleanly_and_closes_the_queue() -> None:
    source = ScriptedSource(lambda run: "stream")
    sup = SupervisedSource(source, maxsize=8, **FAST).start()
    assert wait_for(lambda: sup.stats()["chunks"] >= 20)
    assert sup.stop(timeout=5) is True
    assert sup.finished and sup.queue.closed and source.closes >= 1
    assert sup.stats()["drops"] > 0  # nobody consumed: a live source dropped the oldest, never blocked
    assert sup.stats()["restarts"] == 0


def test_stop_unblocks_a_stalled_read() -> None:
    source = ScriptedSource(lambda run: "stall@2")
    sup = SupervisedSource(source, stale_timeout_s=60, **FAST).start()
    assert wait_for(lambda: sup.stats()["chunks"] == 2)
    assert sup.stop(timeout=5) is True


# -- a real file: end of stream, nothing lost ----------------------------------------------------------

def test_a_media_file_ends_the_stream_without_restarts_or_losses() -> None:
    pytest.importorskip("av", reason="PyAV is not installed (pip install edge-mmer[capture])")
    sup = SupervisedSource(MediaFileSource(DEMO), maxsize=8, stale_timeout_s=5, **FAST).start()
    got = list(sup.queue)  # until end of stream
    assert sup.wait(10)
    stats = sup.stats()
    assert stats["restarts"] == 0 and stats["drops"] == 0 and stats["state"] == "ended"
    assert sum(isinstance(c, VideoFrame) for c in got) == 408
    assert stats["chunks"] == len(got)
    assert [c.t for c in got] == sorted(c.t for c in got)
    sup.stop()


def test_a_broken_file_ends_the_stream_with_its_error(tmp_path: Path) -> None:
    pytest.importorskip("av", reason="PyAV is not installed (pip install edge-mmer[capture])")
    restarts: list[Restart] = []
    sup = SupervisedSource(MediaFileSource(tmp_path / "gone.mp4"), on_restart=restarts.append, **FAST).start()
    assert list(sup.queue) == []
    assert sup.wait(10)
    stats = sup.stats()
    assert "gone.mp4: no such file" in stats["last_error"] and stats["restarts"] == 0 and restarts == []
