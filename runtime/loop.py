"""The running loop: sources in capture threads -> one bounded queue -> the pipeline -> the sink.

Capture threads (one per source, each under a watchdog that restarts it when it errors or goes
stale) put chunks on a bounded queue; a live source never waits (a full queue drops its oldest
chunk and counts it), a file source waits for room so nothing of a recording is skipped. The
calling thread runs the pipeline and the sink. A stop request (SIGINT / SIGTERM in the CLI)
finishes the utterance in progress, flushes the sink (MQTT: the spool, then ``offline``) and returns.
Nothing seen or heard is written to disk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_mmer.bundle import Bundle, BundleError, read_bundle
from edge_mmer.config import ConfigError
from edge_mmer.errors import RunError
from edge_mmer.runtime.chunks import Chunk
from edge_mmer.runtime.events import EmotionEvent, StatsMessage
from edge_mmer.runtime.networks import Networks
from edge_mmer.runtime.pipeline import Pipeline
from edge_mmer.runtime.queues import DropOldestQueue, Empty, QueueClosed
from edge_mmer.runtime.runners.base import Runner, RunnerError
from edge_mmer.runtime.runners.load import load_runners
from edge_mmer.runtime.service.heartbeat import Heartbeat, stats_fields, status_line
from edge_mmer.runtime.settings import RuntimeSettings, repo_demo_dir
from edge_mmer.runtime.sinks.base import Sink, SinkError
from edge_mmer.runtime.sinks.factory import make_sink
from edge_mmer.runtime.sources.base import Source, SourceError
from edge_mmer.runtime.sources.factory import build_sources
from edge_mmer.runtime.sources.spec import CAMERA, FILE, MIC, OFF, SourceSpec
from edge_mmer.runtime.stats import RuntimeStats
from edge_mmer.runtime.watchdog import SupervisedSource
from edge_mmer.vocab import LOG_FIELDS

log = logging.getLogger(__name__)

SYNTHETIC_WARNING = ("bundle %s was trained on SYNTHETIC data (the demo): its events show the loop works, "
                     "not how well it recognises real people")


@dataclass
class RunSummary:
    events: int = 0
    decisions: int = 0
    wall_s: float = 0.0
    stream_s: float = 0.0  # stream time covered (audio clock, else video clock)
    cold_start_s: float | None = None  # start of run() to the first event
    startup_s: float = 0.0  # start of run() to the first chunk processed
    backends: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stopped_by: str = "end of stream"
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def realtime_factor(self) -> float | None:
        return self.stream_s / self.wall_s if self.wall_s > 0 and self.stream_s > 0 else None

    def describe(self) -> str:
        rtf = self.realtime_factor
        cold = "n/a" if self.cold_start_s is None else f"{self.cold_start_s:.2f} s"
        return (f"stopped ({self.stopped_by}): {self.events} events from {self.decisions} decisions, "
                f"{self.stream_s:.1f} s of stream in {self.wall_s:.1f} s"
                + (f" ({rtf:.1f}x real time)" if rtf else "") + f"; cold start to first event {cold}")


@dataclass(frozen=True)
class ResolvedInputs:
    bundle: Path
    camera: str | None  # None = no camera
    mic: str | None  # None = no microphone; "" = the camera file's own audio track


def resolve_inputs(settings: RuntimeSettings) -> ResolvedInputs:
    """Fill the defaults: the demo bundle on the demo clip, or camera 0 + the default microphone."""
    run = settings.run
    demo = repo_demo_dir()
    if run.bundle:
        bundle = Path(run.bundle)
    else:
        bundle = demo / "bundle"
        if not (bundle / "manifest.json").is_file():
            raise RunError(f"the embedded demo bundle is not at {bundle} (running from an installed package? pass "
                           "--bundle DIR, or set EDGE_MMER_DEMO_DIR to a checkout's demo/ folder)")
    use_demo_clip = not run.bundle and not run.camera and not run.mic
    camera: str | None = run.camera or None
    if use_demo_clip:
        camera = str(demo / "demo_clip.mp4")
    elif not run.camera:
        camera = "0"
    camera_spec = SourceSpec.parse(camera, CAMERA)
    if camera_spec.kind == OFF:
        camera = None
    mic: str | None = run.mic
    if not mic:
        mic = "" if camera_spec.kind == FILE else "default"  # a video file's own audio track
    if SourceSpec.parse(mic, MIC).kind == OFF:
        mic = None
    if camera is None and mic is None:
        raise RunError("nothing to run on: both --camera and --mic are 'none'")
    return ResolvedInputs(bundle=bundle, camera=camera, mic=mic)


class RuntimeLoop:
    """Build everything from settings, then :meth:`run` until the stream ends or ``stop`` is set."""

    def __init__(self, settings: RuntimeSettings, sink: Sink | None = None, max_events: int = 0,
                 stats: RuntimeStats | None = None,
                 runner_hook: Callable[[dict[str, Runner]], dict[str, Runner]] | None = None,
                 sources: list[Source] | None = None) -> None:
        self.settings = settings
        self.sources = sources  # given sources instead of --camera / --mic (embedding, tests)
        self.runner_hook = runner_hook  # e.g. calibration taps around every runner
        self.model_id: str | None = None
        self._sink_error: SinkError | None = None
        self.sink = sink
        self.max_events = max_events
        self.stats = stats or RuntimeStats()
        self.events: list[EmotionEvent] = []  # kept only when keep_events is set (tests, profiling)
        self.keep_events = False

    # ------------------------------------------------------------------------------ building

    def _load_bundle(self, path: Path) -> Bundle:
        try:
            bundle = read_bundle(path)
        except BundleError as exc:
            raise RunError(str(exc)) from exc
        if bundle.synthetic:
            log.warning(SYNTHETIC_WARNING, path)
        self.model_id = bundle.model_id
        return bundle

    def _load_networks(self, bundle: Bundle, summary: RunSummary) -> Networks:
        run = self.settings.run
        try:
            loaded = load_runners(bundle, backend=run.backend, precision=run.precision, threads=run.threads)
        except RunnerError as exc:
            raise RunError(str(exc)) from exc
        summary.notes.extend(loaded.notes)
        networks = loaded.networks() if self.runner_hook is None else Networks(self.runner_hook(dict(loaded.runners)))
        try:
            networks.activate()
        except RunnerError as exc:
            raise RunError(str(exc)) from exc
        summary.backends = dict(networks.descriptions())
        return networks

    def _open_sources(self, inputs: ResolvedInputs) -> list[Source]:
        if self.sources is not None:
            return self.sources
        try:
            sources = build_sources(inputs.camera, inputs.mic, realtime=self.settings.run.realtime)
            for src in sources:  # a device that cannot be opened at start is an error, not a restart loop
                src.open()
                src.close()
        except SourceError as exc:
            raise RunError(str(exc)) from exc
        return sources

    def _make_sink(self, bundle: Bundle) -> Sink:
        if self.sink is not None:
            return self.sink

        try:
            return make_sink(self.settings.run.sink, device_id=self.settings.device_id, labels=list(bundle.labels),
                             model_id=bundle.model_id, mqtt=self.settings.mqtt)
        except SinkError as exc:
            raise RunError(str(exc)) from exc

    # ------------------------------------------------------------------------------- running

    def run(self, stop: threading.Event | None = None) -> RunSummary:
        stop = stop or threading.Event()
        t_start = time.monotonic()
        summary = RunSummary()
        try:
            inputs = resolve_inputs(self.settings)
            bundle = self._load_bundle(inputs.bundle)
            networks = self._load_networks(bundle, summary)
            sources = self._open_sources(inputs)
        except ConfigError as exc:
            raise RunError(str(exc)) from exc
        has_video = any(s.has_video for s in sources)
        has_audio = any(s.has_audio for s in sources)
        try:
            pipeline = Pipeline(bundle, networks, self.settings.pipeline, device_id=self.settings.device_id,
                                expect_video=has_video, expect_audio=has_audio, stats=self.stats)
        except (BundleError, ValueError) as exc:
            networks.deactivate()
            raise RunError(str(exc)) from exc
        sink = self._make_sink(bundle)
        live = any(s.live for s in sources)
        pipeline.set_live(live)
        wd = self.settings.watchdog
        supervisors = [SupervisedSource(s, DropOldestQueue(self._queue_size(s), producers=1),
                                        stale_timeout_s=wd.stale_timeout_s, backoff_initial_s=wd.backoff_initial_s,
                                        backoff_max_s=wd.backoff_max_s, on_restart=self._on_restart)
                       for s in sources]
        log.info("running: bundle %s (%s), sources %s, sink %s, %s", inputs.bundle, bundle.model_id,
                 ", ".join(s.name for s in sources), self.settings.run.sink, "live" if live else "file")
        for sup in supervisors:
            sup.start()
        queues = [sup.queue for sup in supervisors]
        # a live microphone in an outage (restarting): the camera's clock drives face-only decisions meanwhile
        live_mics = [sup for sup in supervisors if sup.source.live and sup.source.has_audio] \
            if has_video else []
        first_t: float | None = None
        next_stats = time.monotonic() + self.settings.run.stats_interval_s
        heartbeat = Heartbeat.from_environment()  # systemd's notify protocol; does nothing outside a service
        heartbeat.ready(status_line(0, supervisors))
        try:
            while not stop.is_set() and queues:
                t_wait = time.perf_counter()
                chunk = self._next_chunk(queues)
                self.stats.record("capture_wait", time.perf_counter() - t_wait)
                if chunk is not None:
                    if live_mics:
                        pipeline.set_expect_audio(any(sup.streaming for sup in live_mics))
                    if first_t is None:
                        first_t = chunk.t
                        summary.startup_s = time.monotonic() - t_start
                    if self._emit(sink, pipeline.feed(chunk), summary, t_start):
                        stop.set()
                    heartbeat.progress(pipeline.stream_clock)
                heartbeat.tick(lambda: status_line(summary.events, supervisors))
                if sink.failure is not None and self._sink_error is None:  # never a silent zombie
                    log.error("sink %s failed: %s; stopping", self.settings.run.sink, sink.failure)
                    self._sink_error = sink.failure
                    break
                if self.settings.run.stats_interval_s > 0 and time.monotonic() >= next_stats:
                    self._publish_stats(sink, supervisors)
                    next_stats = time.monotonic() + self.settings.run.stats_interval_s
            if stop.is_set():
                summary.stopped_by = "--max-events" if self._limit_reached(summary) else "stop request"
        finally:
            heartbeat.stopping(f"stopping: {status_line(summary.events, supervisors)}")
            heartbeat.close()
            for sup in supervisors:
                sup.stop()
            try:
                self._emit(sink, pipeline.flush(), summary, t_start)
                self._publish_stats(sink, supervisors)
            finally:
                try:
                    sink.close()
                except SinkError as exc:
                    log.error("closing sink %s: %s", self.settings.run.sink, exc)
                networks.deactivate()
        if self._sink_error is not None:
            raise RunError(f"sink {self.settings.run.sink}: {self._sink_error}")
        summary.decisions = pipeline.decisions
        summary.wall_s = time.monotonic() - t_start
        clock = pipeline.stream_clock
        summary.stream_s = float(clock - first_t) if clock is not None and first_t is not None else 0.0
        summary.stats = self._stats_message(supervisors).figures()
        return summary

    def _limit_reached(self, summary: RunSummary) -> bool:
        return self.max_events > 0 and summary.events >= self.max_events

    def _emit(self, sink: Sink, events: list[EmotionEvent], summary: RunSummary, t_start: float) -> bool:
        for ev in events:
            if self._limit_reached(summary) or self._sink_error is not None:
                return True
            try:
                with self.stats.stage("sink"):
                    sink.emit(ev)
            except SinkError as exc:
                log.error("sink %s failed: %s; stopping", self.settings.run.sink, exc)
                self._sink_error = exc
                return True
            if self.keep_events:
                self.events.append(ev)
            summary.events += 1
            if summary.cold_start_s is None:
                summary.cold_start_s = time.monotonic() - t_start
                log.info("first event %.2f s after start", summary.cold_start_s)
        return self._limit_reached(summary)

    def _queue_size(self, source: Source) -> int:
        q = self.settings.queues
        kind = source.kind
        return q.audio if kind == "audio" else q.video if kind == "video" else q.audio + q.video

    def _on_restart(self, restart: Any) -> None:
        self.stats.count("source_restarts")
        log.warning("watchdog: %s restarted (%s), %d restart(s) so far", restart.source, restart.reason,
                    restart.restarts)

    @staticmethod
    def _next_chunk(queues: list[DropOldestQueue[Chunk]]) -> Chunk | None:
        """The next chunk from any source (audio and video each have their own queue, so a flood of
        frames can never push speech out); None after a short wait. Closed, drained queues are removed."""
        for q in list(queues):
            try:
                return q.get(timeout=0)
            except Empty:
                continue
            except QueueClosed:
                queues.remove(q)
        if not queues:
            return None
        try:
            return queues[0].get(timeout=0.01 if len(queues) > 1 else 0.1)
        except Empty:
            return None
        except QueueClosed:
            queues.pop(0)
            return None

    def _stats_message(self, supervisors: list[SupervisedSource]) -> StatsMessage:
        return StatsMessage.from_snapshot(self.settings.device_id, self.stats.snapshot(),
                                          sources={sup.source.name: sup.stats() for sup in supervisors},
                                          drops=sum(sup.queue.dropped for sup in supervisors))

    def _publish_stats(self, sink: Sink, supervisors: list[SupervisedSource]) -> None:
        msg = self._stats_message(supervisors)
        lat = msg.stages.get("decision_latency", {})
        restarts = {n: s.get("restarts", 0) for n, s in msg.sources.items()}
        log.info("stats: %d events, decision latency p50 %.1f ms p90 %.1f ms, queue drops %d, restarts %s",
                 msg.counters.get("events", 0), lat.get("p50", 0.0), lat.get("p90", 0.0), msg.drops, restarts,
                 extra={LOG_FIELDS: stats_fields(msg, restarts)})
        try:
            sink.publish_stats(msg)
        except Exception as exc:  # statistics must never stop the loop
            log.warning("could not publish stats: %s", exc)
