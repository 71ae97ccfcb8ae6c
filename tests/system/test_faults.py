"""Fault injection through the whole runtime loop, with real parts: a real mosquitto (paused, stopped,
restarted), real files and real processes (the CLI in a subprocess, killed, interrupted, or limited in
the file size it may write).

Faults already covered elsewhere (not repeated here; docs/reliability.md lists them all): broker
down at start / restarted x2 / SIGKILL of the sink with its spool / spool at its bound / unwritable
spool / last will (runtime/test_mqtt.py); broker restarted mid-run through the loop, camera failing
mid-run and restarted (runtime/test_loop.py); SIGTERM mid-utterance (system/test_end_to_end.py);
stalled / erroring / ending live sources and backoff (runtime/test_watchdog.py); damaged frames from
``CameraSource`` (runtime/test_sources.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import signal
import sqlite3
import threading
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.broker import Mosquitto, Recorder, wait_until
from support.cli import CliChildFactory, run_cli
from support.demo import DEMO_CLIP, demo_av, demo_timeline
from support.events import ListSink

from edge_mmer.runtime.chunks import AudioChunk, Chunk, VideoFrame
from edge_mmer.runtime.events import EmotionEvent
from edge_mmer.runtime.loop import RunSummary, RuntimeLoop
from edge_mmer.runtime.settings import RuntimeSettings, with_run_overrides
from edge_mmer.runtime.sources.base import Source, SourceError
from edge_mmer.runtime.sources.files import MediaFileSource

PREFIX = "edge-mmer-faults"
DEVICE = "unit-f"
EMOTION = f"{PREFIX}/{DEVICE}/emotion"
AVAIL = f"{PREFIX}/{DEVICE}/availability"


# ------------------------------------------------------------------------------------- helpers


def fault_settings(**run: object) -> RuntimeSettings:
    """Every decision emitted (so the tests can count them), no periodic stats, short backoffs."""
    s = with_run_overrides(RuntimeSettings(), stats_interval_s=0.0, **run)
    return dataclasses.replace(
        s, decision=dataclasses.replace(s.decision, emit="every"),
        watchdog=dataclasses.replace(s.watchdog, backoff_initial_s=0.3, backoff_max_s=0.6))


def mqtt_settings(port: int, spool: Path, **run: object) -> RuntimeSettings:
    s = fault_settings(sink=f"mqtt://127.0.0.1:{port}/{PREFIX}", device_id=DEVICE, **run)
    return dataclasses.replace(s, mqtt=dataclasses.replace(s.mqtt, spool_path=spool, close_timeout_s=20.0))


def spool_rows(path: Path) -> int:
    """Rows left in a (closed) spool file."""
    with sqlite3.connect(str(path)) as db:
        return int(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])


Outcome = dict[str, Any]
"""What the loop's thread left: ``summary`` (a RunSummary) or ``error`` (what it raised)."""


def run_in_thread(loop: RuntimeLoop, stop: threading.Event | None = None) -> tuple[threading.Thread, Outcome]:
    out: Outcome = {}

    def target() -> None:
        try:
            out["summary"] = loop.run(stop)
        except BaseException as exc:  # re-raised by the test
            out["error"] = exc

    th = threading.Thread(target=target, name="loop-under-test", daemon=True)
    th.start()
    return th, out


def finished(th: threading.Thread, out: Outcome, timeout: float = 60.0) -> RunSummary:
    th.join(timeout)
    assert not th.is_alive(), "the loop did not finish"
    if "error" in out:
        raise out["error"]
    summary: RunSummary = out["summary"]
    return summary


class LiveCamera(Source):
    """The demo clip's (real, decoded) frames, cycled at ``fps`` and stamped ``time.monotonic()`` like a camera."""

    live = True
    kind = "video"
    has_video = True
    has_audio = False

    def __init__(self, fps: float = 15.0) -> None:
        self.name = "live camera"
        self.fps = fps
        self._stop = threading.Event()

    def open(self) -> None:
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop.set()

    def chunks(self) -> Iterator[Chunk]:
        _, frames = demo_av()
        stop, i = self._stop, 0
        while not stop.wait(1.0 / self.fps):
            yield VideoFrame(time.monotonic(), frames[i % len(frames)].image, i)
            i += 1


class FaultyMic(Source):
    """A live microphone with a bad day, stamped on ``time.monotonic()`` like PyAudio's chunks.

    First open: ``silence_s`` of digital silence (a muted microphone), then a read error. Opens within
    ``down_s`` of that error fail (unplugged). The next open delivers the demo clip's speech.
    """

    live = True
    kind = "audio"
    has_video = False
    has_audio = True

    def __init__(self, silence_s: float, down_s: float) -> None:
        self.name = "faulty mic"
        self.silence_s = silence_s
        self.down_s = down_s
        self.opens = 0
        self.failed_opens = 0
        self.times: dict[str, float] = {}
        self._stop = threading.Event()

    def open(self) -> None:
        self.opens += 1
        self._stop = threading.Event()
        if "down" in self.times and time.monotonic() - self.times["down"] < self.down_s:
            self.failed_opens += 1
            raise SourceError("faulty mic: no such input device (unplugged)")

    def close(self) -> None:
        self._stop.set()

    def chunks(self) -> Iterator[Chunk]:
        stop, anchor = self._stop, time.monotonic()
        speech = "down" in self.times
        self.times["back" if speech else "silence"] = anchor
        audio, _ = demo_av()
        pcm = audio[: 16000 * 8] if speech else np.zeros(int(16000 * self.silence_s), np.int16)
        for i in range(0, 10**9, 320):
            if stop.wait(max(0.0, anchor + (i + 320) / 16000 - time.monotonic())):
                return
            if not speech and i >= len(pcm):
                self.times["down"] = time.monotonic()
                raise SourceError("faulty mic: read failed (input overflowed, device gone)")
            chunk = pcm[i:i + 320] if i < len(pcm) else np.zeros(320, np.int16)
            yield AudioChunk(anchor + i / 16000, chunk, 16000)


# ------------------------------------------------------------------------------- sensor faults


@pytest.mark.slow  # ~10-15 s: real-time streams
def test_microphone_silent_then_failing_camera_keeps_emitting_and_the_mic_recovers() -> None:
    """Mic: 3 s of silence, a read error, 3 s unplugged (reopens fail), then speech. The camera never
    stops: face-only decisions come during the silence AND during the outage (triggered then, not
    after the mic is back), and speech decisions resume once the watchdog has the mic back."""
    mic = FaultyMic(silence_s=3.0, down_s=3.0)
    settings = fault_settings()
    settings = dataclasses.replace(settings, faces=dataclasses.replace(settings.faces, face_only_interval_s=1.0))
    sink = ListSink()
    stop = threading.Event()
    th, out = run_in_thread(RuntimeLoop(settings, sink=sink, sources=[LiveCamera(), mic]), stop)
    ok = wait_until(lambda: any(e.trigger == "utterance" for e in list(sink.events)), 40.0, step=0.05)
    stop.set()
    summary = finished(th, out)
    assert ok, f"no speech decision after the mic came back: {[(e.trigger, e.monotonic_s) for e in sink.events]}"
    t = mic.times
    assert {"silence", "down", "back"} <= set(t), t
    face_only = [e for e in sink.events if e.trigger == "face_only"]
    assert all(e.channels["speech"] is None and e.channels["face"] is not None for e in face_only)
    during_silence = [e for e in face_only if t["silence"] <= e.monotonic_s < t["down"]]
    during_outage = [e for e in face_only if t["down"] <= e.monotonic_s < t["back"]]
    assert len(during_silence) >= 1, "face-only decisions while the microphone hears only silence"
    assert len(during_outage) >= 1, "face-only decisions while the microphone is unplugged"
    speech = [e for e in sink.events if e.trigger == "utterance"]
    assert speech and all(e.channels["speech"] is not None and e.monotonic_s > t["back"] for e in speech)
    mic_stats = summary.stats["sources"]["faulty mic"]
    assert mic_stats["restarts"] >= 2 and mic_stats["errors"] >= 2 and mic.failed_opens >= 1
    assert summary.stats["sources"]["live camera"]["restarts"] == 0
    assert summary.stats["counters"]["source_restarts"] == mic_stats["restarts"]
    assert [e.seq for e in sink.events] == list(range(1, len(sink.events) + 1))
    assert sink.closed


class GarbageFrames(Source):
    """The demo clip (a real :class:`MediaFileSource`, audio + video) with a malformed frame slipped in,
    at the same time stamp, before every 3rd real frame: empty, wrong dtype, wrong channel count (5, 2),
    a few pixels, or no array at all. (A grey frame is no longer garbage: grey cameras are converted.)"""

    live = False
    kind = "av"
    has_video = True
    has_audio = True
    GARBAGE = (np.zeros((0, 0, 3), np.uint8), np.zeros((240, 320, 3), np.float32), np.zeros((240, 320, 5), np.uint8),
               np.zeros((240, 320, 2), np.uint8), np.zeros((4, 4, 3), np.uint8), np.zeros((240, 320, 3), np.int16),
               np.zeros(0, np.uint8), None)

    def __init__(self) -> None:
        self.inner = MediaFileSource(DEMO_CLIP)
        self.name = "garbage camera"
        self.injected = 0

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def chunks(self) -> Iterator[Chunk]:
        for chunk in self.inner.chunks():
            if isinstance(chunk, VideoFrame) and chunk.index % 3 == 0:
                bad = self.GARBAGE[self.injected % len(self.GARBAGE)]
                self.injected += 1
                yield VideoFrame(chunk.t, bad, -1)  # type: ignore[arg-type, unused-ignore]
            yield chunk


def _decisions(events: list[EmotionEvent]) -> list[tuple[object, ...]]:
    return [(e.seq, e.trigger, e.utterance, e.label, round(e.confidence, 4)) for e in events]


def test_garbage_frames_are_skipped_counted_and_change_nothing() -> None:
    clean, dirty = ListSink(), ListSink()
    RuntimeLoop(fault_settings(), sink=clean, sources=[MediaFileSource(DEMO_CLIP)]).run()
    garbage = GarbageFrames()
    summary = RuntimeLoop(fault_settings(), sink=dirty, sources=[garbage]).run()
    assert garbage.injected >= 100
    assert summary.stats["counters"]["bad_frames"] == garbage.injected, "every malformed frame is counted"
    assert len(clean.events) == len(demo_timeline())
    assert _decisions(dirty.events) == _decisions(clean.events), "the events are those of the clean clip"


# --------------------------------------------------------------------------------- broker faults


class PacedClip(MediaFileSource):
    """The demo clip, paced at ``speed`` x real time (a fast 'live' stream that still ends)."""

    def __init__(self, speed: float) -> None:
        super().__init__(DEMO_CLIP)
        self.speed = speed

    def chunks(self) -> Iterator[Chunk]:
        start = time.monotonic()
        for chunk in super().chunks():
            delay = start + chunk.t / self.speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield chunk


def test_broker_frozen_mid_run_and_at_the_end_loses_nothing_through_the_loop(tmp_path: Path,
                                                                           broker: Mosquitto) -> None:
    """SIGSTOP: the broker holds the TCP connection but reads nothing and acknowledges nothing for 6 s;
    the stream ends while it is frozen, so the sink's close has to wait for the acknowledgements."""
    rec = Recorder(broker.port, [EMOTION]).start()
    spool = tmp_path / "spool.sqlite"
    loop = RuntimeLoop(mqtt_settings(broker.port, spool), sources=[PacedClip(speed=4.0)])
    th, out = run_in_thread(loop)
    assert rec.wait_count(EMOTION, 2, timeout=30)
    broker.pause()
    try:
        time.sleep(6.0)
        assert th.is_alive(), "the stream ended while the broker was frozen: the close waits for it"
        frozen_seen = len(rec.messages(EMOTION))
    finally:
        broker.resume()
    summary = finished(th, out)
    assert rec.wait_count(EMOTION, summary.events, timeout=20)
    rec.sync()
    seqs = [json.loads(p)["seq"] for p in rec.payloads(EMOTION)]
    rec.stop()
    assert summary.events == len(demo_timeline()) and frozen_seen < summary.events
    assert seqs == list(range(1, summary.events + 1)), "every event once, in order"
    assert spool_rows(spool) == 0, "the spool was drained before exit"


@pytest.mark.slow  # ~10-15 s: real-time streams
@pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="needs resource.prlimit (Linux)")
def test_disk_full_while_spooling_the_cli_keeps_running_and_delivers(tmp_path: Path, broker: Mosquitto,
                                                                     cli_child: CliChildFactory) -> None:
    """``edge-mmer run`` whose disk 'fills up' mid-run: once the first event is out, the process gets a
    file-size limit at the spool's current size (``prlimit``: the kernel refuses every write past it
    with EFBIG, as on a full disk). The spool's writes fail, the error is logged naming the file, the
    loop keeps running, and every event still reaches the broker, in order (from the sink's in-memory
    overflow)."""
    spool = tmp_path / "spool" / "spool.sqlite"
    rec = Recorder(broker.port, [EMOTION]).start()
    cfg = _mqtt_toml(tmp_path / "unit.toml", broker.port, spool, emit="every")
    child = cli_child(cfg, "--realtime", "--max-events", "4")
    assert child.wait_for(lambda: len(rec.messages(EMOTION)) >= 1), f"no first event: {child.tail()}"
    files = [f for f in spool.parent.iterdir() if f.is_file()]
    limit = max(f.stat().st_size for f in files)
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of killing the process
    resource.prlimit(child.pid, resource.RLIMIT_FSIZE, (limit, limit))
    err = child.finish(timeout=60).stderr
    assert child.returncode == 0, err[-3000:]
    assert rec.wait_count(EMOTION, 4, timeout=20)
    rec.sync()
    seqs = [json.loads(p)["seq"] for p in rec.payloads(EMOTION)]
    rec.stop()
    assert re.search(rf"spool {re.escape(str(spool))} cannot be written: ", err), err[-3000:]
    assert "stopped (--max-events): 4 events" in err
    assert seqs == [1, 2, 3, 4], "every event once, in order"
    assert all(f.stat().st_size <= limit for f in spool.parent.iterdir()), "nothing was written past the limit"


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE (POSIX)")
def test_disk_full_at_start_is_a_clear_error(tmp_path: Path) -> None:
    def limit_file_size() -> None:  # Python ignores SIGXFSZ: writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    out = run_cli("run", "--sink", f"jsonl:{tmp_path / 'ev.jsonl'}", preexec_fn=limit_file_size)
    assert out.returncode in (0, 1)  # runs (nothing big to write) or stops saying why
    assert "Traceback" not in out.stderr, out.stderr[-2000:]


def _mqtt_toml(path: Path, port: int, spool: Path, stats_interval_s: float = 0.0, emit: str = "change") -> Path:
    path.write_text(f'[run]\nsink = "mqtt://127.0.0.1:{port}/{PREFIX}"\ndevice_id = "{DEVICE}"\n'
                    f'stats_interval_s = {stats_interval_s}\n\n[decision]\nemit = "{emit}"\n\n'
                    f'[mqtt]\nspool_path = "{spool}"\nclose_timeout_s = 15.0\n')
    return path


def test_sigint_mid_utterance_flushes_the_spool_and_publishes_offline(tmp_path: Path, broker: Mosquitto,
                                                                      cli_child: CliChildFactory) -> None:
    spool = tmp_path / "spool.sqlite"
    rec = Recorder(broker.port, [f"{PREFIX}/{DEVICE}/#"]).start()
    child = cli_child(_mqtt_toml(tmp_path / "unit.toml", broker.port, spool), "--realtime")
    assert child.wait_for(lambda: len(rec.messages(EMOTION)) >= 1), f"no first event: {child.tail()}"
    time.sleep(1.5)  # the 2nd sentence runs from 3.8 s to 6.3 s of the clip: stop in its middle
    err = child.stop(signal.SIGINT).stderr
    assert child.returncode == 0, err[-3000:]
    assert "signal SIGINT" in err and "stop request" in err
    rec.sync()
    events = [json.loads(p) for p in rec.payloads(EMOTION)]
    avail = rec.payloads(f"{PREFIX}/{DEVICE}/availability")
    rec.stop()
    late = Recorder(broker.port, [AVAIL]).start()  # a newcomer gets the retained availability
    assert late.wait_count(AVAIL, 1)
    retained = late.messages(AVAIL)
    late.stop()
    assert len(events) == 2, "the utterance in progress was finished and delivered"
    assert events[1]["utterance"]["end_s"] < 6.3
    assert [e["seq"] for e in events] == [1, 2]
    assert avail[0] == b"online" and avail[-1] == b"offline"
    assert retained[0].retain and retained[0].payload == b"offline"
    assert spool_rows(spool) == 0, "the spool was flushed"


def _silence_wav(path: Path, seconds: float = 1.0) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(int(16000 * seconds), np.int16).tobytes())
    return path


@pytest.mark.slow  # ~10-15 s: real-time streams
def test_sigkill_with_the_broker_down_then_restart_replays_the_spool(tmp_path: Path, broker: Mosquitto,
                                                                     cli_child: CliChildFactory) -> None:
    """``edge-mmer run`` spools while the broker is down and is SIGKILLed (no close, no flush); the
    next ``edge-mmer run`` with the same ``[mqtt] spool_path`` sends every spooled event, in order."""
    spool = tmp_path / "spool.sqlite"
    rec = Recorder(broker.port, [EMOTION], client_id=f"faults-{broker.port}", clean=False).start()
    broker.stop()  # the subscriber's session is saved; the broker is down for the first run
    cfg = _mqtt_toml(tmp_path / "unit.toml", broker.port, spool, stats_interval_s=0.5)
    first = cli_child(cfg, "--realtime")
    assert first.wait_for(lambda: (m := first.last_match(r"stats: (\d+) events")) is not None
                          and int(m.group(1)) >= 3, 60), first.tail()
    first.stop(signal.SIGKILL, timeout=10)
    logged = first.last_match(r"stats: (\d+) events")
    assert logged is not None
    produced_at_least = int(logged.group(1))
    assert "cannot reach" in first.stderr
    assert first.returncode == -signal.SIGKILL
    broker.start()
    quiet = _silence_wav(tmp_path / "quiet.wav")
    second = run_cli("run", "--config", str(cfg), "--camera", "none", "--mic", str(quiet))
    assert second.returncode == 0, second.stderr[-3000:]
    held = re.search(r"holds (\d+) unacknowledged event", second.stderr)
    assert held is not None, second.stderr[-3000:]
    spooled = int(held.group(1))
    assert rec.wait_count(EMOTION, spooled, timeout=30)
    rec.sync()
    events = [json.loads(p) for p in rec.payloads(EMOTION)]
    rec.stop()
    assert spooled >= produced_at_least >= 3
    assert len({e["session_id"] for e in events}) == 1, "only the killed run's events (the 2nd run heard silence)"
    assert [e["seq"] for e in events] == list(range(1, spooled + 1)), "every spooled event once, in order"
    assert spool_rows(spool) == 0
    assert "0 events" in second.stderr
    assert os.path.getsize(spool) > 0
