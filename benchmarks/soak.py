"""Soak: the runtime loop on an endless looping source, MQTT to a real mosquitto restarted periodically.

``python -m benchmarks.soak --minutes 10 --speed 4 [--restart-every 60] [--down-s 3] [--out benchmarks/results]``

What runs: :class:`~edge_mmer.runtime.loop.RuntimeLoop` with the committed demo bundle, a
:class:`LoopingClipSource` that replays the demo clip (audio + video) forever with a monotonically
increasing stream clock, paced at ``--speed`` x real time and marked *live* (so it gets what a camera
and a microphone get: a drop-oldest queue and the watchdog), and the MQTT sink (QoS 1, on-disk spool)
publishing to a real ``mosquitto`` (``tests/support/broker.py``) that is stopped (``--kill``: killed with
SIGKILL, saving its persistence on every change) every ``--restart-every`` seconds and started again
``--down-s`` seconds later. A subscriber with a persistent session (broker
persistence on, ``clean_session=False``) records every event, so what the broker queued for it across
a restart is not lost on the subscriber's side.

What it reports (``soak.md`` and ``soak.json`` in ``--out``): wall and stream time; process RSS at
start (after a warm-up), at the end, its maximum and its growth per hour (least-squares slope of the
samples after the warm-up); events produced by the loop vs. distinct events received by the subscriber
(lost, duplicated, out of order); broker restarts and sink reconnects; chunks dropped by the queues,
events dropped by the spool, spool write errors; watchdog restarts of the source.

This is a benchmark, not a test: it takes as long as you ask. Needs ``mosquitto`` on the PATH (or in
/usr/sbin) and paho-mqtt; Linux (RSS is read from ``/proc/self/status``).
"""

from __future__ import annotations

import argparse
import array
import dataclasses
import datetime as _dt
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:  # tests/support/broker.py: the same broker helper the tests use
    sys.path.insert(0, str(ROOT / "tests"))

from edge_mmer.bundle import read_bundle  # noqa: E402
from edge_mmer.runtime.chunks import AudioChunk, Chunk, VideoFrame  # noqa: E402
from edge_mmer.runtime.loop import RunSummary, RuntimeLoop  # noqa: E402
from edge_mmer.runtime.settings import RuntimeSettings, with_run_overrides  # noqa: E402
from edge_mmer.runtime.sinks.factory import make_sink  # noqa: E402
from edge_mmer.runtime.sinks.mqtt import MqttSink  # noqa: E402
from edge_mmer.runtime.sources.base import Source  # noqa: E402
from edge_mmer.runtime.sources.files import MediaFileSource  # noqa: E402

log = logging.getLogger("benchmarks.soak")

SCHEMA = "edge-mmer/bench-soak"
VERSION = 1
DEMO_DIR = ROOT / "demo"
PREFIX = "edge-mmer-soak"
DEVICE = "soak-unit"
PASS_GAP_S = 0.5  # stream-clock gap between two passes over the clip
WATCHDOG_S = 10.0  # as $WATCHDOG_USEC: the loop pings every 5 s while the stream moves


class LoopingClipSource(Source):
    """A media file replayed forever, audio and video, on one ever-increasing stream clock.

    Pass ``k`` carries the file's times shifted by where pass ``k - 1`` ended (plus a short gap), so
    the clock never goes back, also across a reopen by the watchdog (the stream goes on from where it
    was). Delivery is paced to ``speed`` x real time. ``live`` is True: the loop treats it as a
    camera + microphone (drop-oldest queue, stale detection, restarts).
    """

    live = True
    kind = "av"
    has_video = True
    has_audio = True

    def __init__(self, path: Path, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.path = Path(path)
        self.speed = speed
        self.name = f"looping {self.path.name}"
        self._inner = MediaFileSource(self.path, realtime=False)
        self._stop = threading.Event()
        self._base = 0.0  # stream time where the next pass starts
        self._last_t = -PASS_GAP_S
        self.passes = 0

    def open(self) -> None:
        self._inner.open()
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop.set()
        self._inner.close()

    def chunks(self) -> Iterator[Chunk]:
        return self._generate(self._stop)

    def _generate(self, stop: threading.Event) -> Iterator[Chunk]:
        self._base = self._last_t + PASS_GAP_S
        wall0: float | None = None
        t0 = self._base
        while not stop.is_set():
            base = self._base
            for chunk in self._inner.chunks():
                if stop.is_set():
                    return
                t = base + chunk.t
                now = time.monotonic()
                if wall0 is None:
                    wall0 = now
                delay = wall0 + (t - t0) / self.speed - now
                if delay > 0 and stop.wait(delay):
                    return
                self._last_t = max(self._last_t, t + (chunk.duration if isinstance(chunk, AudioChunk) else 0.0))
                if isinstance(chunk, AudioChunk):
                    yield AudioChunk(t, chunk.samples, chunk.sample_rate)
                else:
                    assert isinstance(chunk, VideoFrame)
                    yield VideoFrame(t, chunk.image, chunk.index)
            self.passes += 1
            self._base = self._last_t + PASS_GAP_S


def _proc_status(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status (Linux only)")


def open_fds() -> int:
    """This process's open file descriptors (``/proc/self/fd``)."""
    return len(os.listdir("/proc/self/fd"))


def threads() -> int:
    """This process's threads, native ones included (``Threads`` of ``/proc/self/status``)."""
    return _proc_status("Threads")


def rss_kib() -> int:
    """This process's resident set size in KiB (``VmRSS`` of ``/proc/self/status``)."""
    return _proc_status("VmRSS")


class NotifyListener:
    """A service manager's side of ``$NOTIFY_SOCKET``: counts the loop's ``WATCHDOG=1`` pings and the
    longest gap between two, so the soak also runs the notify path a service runs."""

    def __init__(self, path: Path, watchdog_s: float) -> None:
        import socket

        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.5)
        self.watchdog_s = watchdog_s
        self.pings = 0
        self.max_gap_s = 0.0
        self.messages: dict[str, int] = {}
        self._last: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="soak-notify", daemon=True)

    def start(self) -> dict[str, str]:
        self._thread.start()
        return {"NOTIFY_SOCKET": str(self.path), "WATCHDOG_USEC": str(int(self.watchdog_s * 1e6))}

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            except OSError:
                return
            for line in data.splitlines():
                key = line.partition("=")[0]
                self.messages[key] = self.messages.get(key, 0) + 1
                if line == "WATCHDOG=1":
                    now = time.monotonic()
                    if self._last is not None:
                        self.max_gap_s = max(self.max_gap_s, now - self._last)
                    self._last = now
                    self.pings += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class SeqRecorder:
    """The persistent subscriber, keeping only each event's ``seq`` (8 bytes an event).

    It runs in the soak's own process, whose RSS is what is measured: keeping every payload (as the
    tests' recorder does) would itself grow by about a kilobyte an event and read as a leak.
    """

    def __init__(self, port: int, topic: str) -> None:
        from support.broker import Recorder

        self.topic = topic
        self.seqs = array.array("q")
        self._lock = threading.Lock()
        self.inner = Recorder(port, [topic], client_id="soak-subscriber", clean=False)
        keep_other = self.inner._on_message

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            if message.topic != topic:
                keep_other(client, userdata, message)  # the sync round trips
                return
            seq = int(json.loads(message.payload)["seq"])
            with self._lock:
                self.seqs.append(seq)

        self.inner.client.on_message = on_message

    def received(self) -> list[int]:
        with self._lock:
            return list(self.seqs)


def slope_per_hour(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, KiB) samples, in MiB per hour."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    var = sum((t - mx) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mx) * (v - my) for t, v in samples)
    return cov / var * 3600.0 / 1024.0


def soak_settings(port: int, spool: Path, stats_interval_s: float) -> RuntimeSettings:
    s = with_run_overrides(RuntimeSettings(), sink=f"mqtt://127.0.0.1:{port}/{PREFIX}", device_id=DEVICE,
                           stats_interval_s=stats_interval_s, backend="onnxruntime")
    return dataclasses.replace(
        s, decision=dataclasses.replace(s.decision, emit="every"),
        mqtt=dataclasses.replace(s.mqtt, spool_path=spool, close_timeout_s=30.0))


def run_soak(minutes: float, speed: float, restart_every_s: float, down_s: float, workdir: Path,
             warmup_s: float = 30.0, sample_every_s: float = 5.0, stats_interval_s: float = 30.0,
             kill: bool = False) -> dict[str, Any]:
    """Run the soak; returns the figures (see the module docstring). ``kill``: the broker is killed
    (SIGKILL) instead of stopped, and saves its persistence on every change so that what it had
    acknowledged survives (what the subscriber then misses is the broker's loss, not the device's)."""
    from support.broker import Mosquitto, wait_until

    broker = Mosquitto(workdir / "broker", persistence=True)
    if kill:
        with broker.conf_path.open("a") as conf:
            conf.write("autosave_on_changes true\nautosave_interval 1\n")
    broker.start()
    topic = f"{PREFIX}/{DEVICE}/emotion"
    rec = SeqRecorder(broker.port, topic)
    rec.inner.start()
    bundle = read_bundle(DEMO_DIR / "bundle")
    settings = soak_settings(broker.port, workdir / "spool.sqlite", stats_interval_s)
    sink = make_sink(settings.run.sink, device_id=DEVICE, labels=list(bundle.labels), model_id=bundle.model_id,
                     mqtt=settings.mqtt)
    assert isinstance(sink, MqttSink)
    source = LoopingClipSource(DEMO_DIR / "demo_clip.mp4", speed=speed)
    notify = NotifyListener(workdir / "notify.sock", watchdog_s=WATCHDOG_S)
    os.environ.update(notify.start())  # the loop reads them when it starts, as under systemd
    loop = RuntimeLoop(settings, sink=sink, sources=[source])
    stop = threading.Event()
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["summary"] = loop.run(stop)
        except BaseException as exc:  # reported, not swallowed
            result["error"] = f"{type(exc).__name__}: {exc}"

    samples: list[tuple[float, int]] = []
    handles: list[tuple[float, int, int]] = []  # (seconds, open fds, threads)
    restarts = 0
    t_start = time.monotonic()
    deadline = t_start + minutes * 60.0
    next_sample = t_start
    next_restart = t_start + restart_every_s if restart_every_s > 0 else float("inf")
    thread = threading.Thread(target=target, name="soak-loop", daemon=True)
    thread.start()
    # the loop has read them once READY=1 came; the brokers started later must not inherit them (Debian's
    # mosquitto speaks the notify protocol too, and would add its own READY=1 at every restart)
    wait_until(lambda: notify.messages.get("READY", 0) > 0 or not thread.is_alive(), 60.0, step=0.05)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
        os.environ.pop(key, None)
    try:
        while time.monotonic() < deadline and thread.is_alive():
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - t_start, rss_kib()))
                handles.append((now - t_start, open_fds(), threads()))
                next_sample = now + sample_every_s
            if now >= next_restart:
                broker.kill() if kill else broker.stop()
                time.sleep(down_s)
                broker.start()
                restarts += 1
                next_restart = time.monotonic() + restart_every_s
                log.info("broker restart %d done (%.0f s into the soak)", restarts, time.monotonic() - t_start)
            time.sleep(min(0.5, max(0.0, min(next_sample, next_restart, deadline) - time.monotonic())))
        samples.append((time.monotonic() - t_start, rss_kib()))
        stop.set()
        thread.join(timeout=120)
        if thread.is_alive():
            raise RuntimeError("the loop did not stop within 120 s of the stop request")
        if "error" in result:
            raise RuntimeError(f"the loop failed: {result['error']}")
        summary: RunSummary = result["summary"]
        produced = summary.events
        # the sink closed (flushed, or left the rest in the spool): give the subscriber time to drain
        wait_until(lambda: len(rec.received()) >= produced, 60.0, step=0.1)
        rec.inner.sync()
        received = rec.received()
    finally:
        notify.stop()
        rec.inner.stop()
        broker.kill()
    distinct = sorted(set(received))
    first_seen: list[int] = []
    seen: set[int] = set()
    for s in received:
        if s not in seen:
            seen.add(s)
            first_seen.append(s)
    after_warmup = [(t, v) for t, v in samples if t >= warmup_s] or samples
    last_hour_from = samples[-1][0] - 3600.0 / speed  # wall seconds where the last hour of stream starts
    last_hour = [(t, v) for t, v in after_warmup if t >= last_hour_from] or after_warmup
    warm_handles = [h for h in handles if h[0] >= warmup_s] or handles or [(0.0, 0, 0)]
    fds_seen = [f for _, f, _ in warm_handles]
    threads_seen = [n for _, _, n in warm_handles]
    counters = sink.counters()
    stats = summary.stats
    src_stats: dict[str, Any] = next(iter(stats.get("sources", {}).values()), {})
    wall_s = summary.wall_s
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "params": {"minutes": minutes, "speed": speed, "restart_every_s": restart_every_s, "down_s": down_s,
                   "warmup_s": warmup_s, "qos": settings.mqtt.qos, "decision_emit": settings.decision.emit,
                   "bundle": "demo/bundle", "source": "demo/demo_clip.mp4, looped", "broker_kill": kill},
        "wall_s": round(wall_s, 1),
        "stream_s": round(summary.stream_s, 1),
        "clip_passes": source.passes,
        "rss_mib": {"start": round(after_warmup[0][1] / 1024, 1), "end": round(samples[-1][1] / 1024, 1),
                    "max": round(max(v for _, v in samples) / 1024, 1),
                    "growth_mib_per_hour": round(slope_per_hour(after_warmup), 2),
                    "samples": len(samples),
                    # per hour of stream (what a device at 1x real time sees, for growth per chunk)
                    "growth_mib_per_stream_hour": round(slope_per_hour(after_warmup) / speed, 2),
                    "last_stream_hour": {
                        "from_wall_s": round(max(last_hour_from, after_warmup[0][0]), 1),
                        "samples": len(last_hour),
                        "start": round(last_hour[0][1] / 1024, 1), "end": round(last_hour[-1][1] / 1024, 1),
                        "growth_mib_per_hour": round(slope_per_hour(last_hour), 2),
                        "growth_mib_per_stream_hour": round(slope_per_hour(last_hour) / speed, 2)}},
        "open_fds": {"first": fds_seen[0], "last": fds_seen[-1], "min": min(fds_seen), "max": max(fds_seen)},
        "threads": {"first": threads_seen[0], "last": threads_seen[-1], "min": min(threads_seen),
                    "max": max(threads_seen)},
        "rss_trace": [(round(t, 1), v) for t, v in samples[:: max(1, len(samples) // 400)]],
        "events": {"produced": produced, "received_distinct": len(distinct),
                   "lost": len(set(range(1, produced + 1)) - seen),
                   "duplicates": len(received) - len(distinct),
                   "order_kept": first_seen == distinct,
                   "decisions": summary.decisions},
        "broker": {"restarts": restarts, "sink_reconnects": counters["reconnects"]},
        "drops": {"queue_chunks": stats.get("drops", 0), "spool_events": counters["dropped"],
                  "spool_write_errors": counters["spool_write_errors"], "left_in_spool": counters["spooled"]},
        "notify": {"watchdog_s": WATCHDOG_S, "messages": dict(notify.messages), "watchdog_pings": notify.pings,
                   "max_ping_gap_s": round(notify.max_gap_s, 2)},
        "source_restarts": src_stats.get("restarts", 0),
        "decision_latency_ms": {k: round(v, 1) for k, v in stats.get("stages", {}).get("decision_latency", {}).items()
                                if k in ("p50", "p90", "p99", "max")},
        "stopped_by": summary.stopped_by,
    }


def command_line(args: argparse.Namespace) -> str:
    return (f"python -m benchmarks.soak --minutes {args.minutes:g} --speed {args.speed:g} "
            f"--restart-every {args.restart_every:g} --down-s {args.down_s:g} --warmup {args.warmup:g}"
            f"{' --kill' if args.kill else ''}")


def render_markdown(r: dict[str, Any], command: str) -> str:
    ev, rss, dr, br = r["events"], r["rss_mib"], r["drops"], r["broker"]
    rows = [
        ("wall time / stream time", f"{r['wall_s'] / 60:.1f} min / {r['stream_s'] / 60:.1f} min "
                                    f"({r['params']['speed']:g}x, {r['clip_passes']} passes over the demo clip)"),
        ("events produced / received (distinct)", f"{ev['produced']} / {ev['received_distinct']}"),
        ("events lost / duplicated / order kept",
         f"{ev['lost']} / {ev['duplicates']} / {'yes' if ev['order_kept'] else 'NO'}"),
        ("broker restarts / sink reconnects", f"{br['restarts']} / {br['sink_reconnects']}"),
        ("queue drops (chunks) / spool drops (events)", f"{dr['queue_chunks']} / {dr['spool_events']}"),
        ("spool write errors / left in spool at exit", f"{dr['spool_write_errors']} / {dr['left_in_spool']}"),
        ("source restarts (watchdog)", str(r["source_restarts"])),
        ("notify: WATCHDOG=1 pings / longest gap", f"{r['notify']['watchdog_pings']} / "
                                                   f"{r['notify']['max_ping_gap_s']:.1f} s "
                                                   f"(WatchdogSec {r['notify']['watchdog_s']:g} s)"),
        ("RSS start (after warm-up) / end / max", f"{rss['start']} / {rss['end']} / {rss['max']} MiB"),
        ("RSS growth (least squares, after warm-up)",
         f"{rss['growth_mib_per_hour']:+.2f} MiB per wall hour ({rss['growth_mib_per_stream_hour']:+.2f} per stream "
         f"hour) over {rss['samples']} samples"),
        ("RSS over the last hour of stream", f"{rss['last_stream_hour']['start']} → {rss['last_stream_hour']['end']} "
         f"MiB; {rss['last_stream_hour']['growth_mib_per_hour']:+.2f} MiB per wall hour "
         f"({rss['last_stream_hour']['growth_mib_per_stream_hour']:+.2f} per stream hour), "
         f"{rss['last_stream_hour']['samples']} samples"),
        ("open fds first / last / max", f"{r['open_fds']['first']} / {r['open_fds']['last']} / {r['open_fds']['max']}"),
        ("threads first / last / min-max", f"{r['threads']['first']} / {r['threads']['last']} / "
                                           f"{r['threads']['min']}-{r['threads']['max']}"),
        ("decision latency p50 / p90 / max", " / ".join(f"{r['decision_latency_ms'].get(k, 0):.1f}"
                                                         for k in ("p50", "p90", "max")) + " ms"),
    ]
    m = r["machine"]
    lines = [
        "# Soak: the runtime loop with periodic broker restarts",
        "",
        f"`{command}` — {r['date']}, Python {m['python']}, {m['cpus']} CPUs, {m['platform']}.",
        "",
        f"Demo bundle on the demo clip looped at {r['params']['speed']:g}x real time (live source: drop-oldest "
        f"queue, watchdog), MQTT QoS {r['params']['qos']} to a real mosquitto "
        f"{'killed (SIGKILL)' if r['params'].get('broker_kill') else 'stopped'} every "
        f"{r['params']['restart_every_s']:g} s and started again {r['params']['down_s']:g} s later; a persistent "
        "subscriber counts what arrives.",
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="wall-clock minutes to run (default 30)")
    p.add_argument("--speed", type=float, default=1.0, help="stream pace, x real time (default 1)")
    p.add_argument("--restart-every", type=float, default=60.0, metavar="S",
                   help="stop the broker every S seconds of wall time (0 = never; default 60)")
    p.add_argument("--down-s", type=float, default=3.0, help="seconds the broker stays down each time (default 3)")
    p.add_argument("--warmup", type=float, default=30.0, help="seconds before the RSS baseline (default 30)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where soak.md/json go")
    p.add_argument("--quiet", action="store_true", help="warnings and errors only on stderr")
    p.add_argument("--kill", action="store_true", help="kill -9 the broker instead of stopping it")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.minutes <= 0 or args.speed <= 0 or args.down_s < 0 or args.restart_every < 0:
        p.error("--minutes and --speed must be > 0, --down-s and --restart-every >= 0")
    from support.broker import mosquitto_binary

    if mosquitto_binary() is None:
        sys.stderr.write("soak: mosquitto is not installed (apt-get install mosquitto)\n")
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="edge-mmer-soak-"))
    try:
        figures = run_soak(args.minutes, args.speed, args.restart_every, args.down_s, workdir, warmup_s=args.warmup,
                           kill=args.kill)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    command = command_line(args)
    figures["command"] = command
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(figures, indent=2) + "\n")
    (args.out / "soak.md").write_text(render_markdown(figures, command))
    sys.stdout.write(render_markdown(figures, command))
    ev = figures["events"]
    return 0 if ev["lost"] == 0 and ev["duplicates"] == 0 and ev["order_kept"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
