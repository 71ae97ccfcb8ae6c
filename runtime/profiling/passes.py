"""Timed passes of the real pipeline.

* :func:`run_file_pass` — a media file through :class:`Pipeline`, fed by :class:`MediaFileSource` as
  fast as it decodes, in the calling thread: ``capture_wait`` is the time spent getting the next
  chunk from the decoder, every other stage is timed by the pipeline itself, ``sink`` by this module.
* :func:`run_loop_pass` — :class:`RuntimeLoop` (capture threads, bounded queue, watchdog, sink) on
  live devices or a file paced to real time, stopped after a duration or a number of utterances.

Both record into a :class:`TracingStats` (one per variant, shared by its passes) and return a
:class:`PassResult`; the end-to-end latency of an event is from the VAD's end-of-utterance decision
(the start of its ``decision_latency`` span) to the moment the sink returned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_mmer.bundle import Bundle
from edge_mmer.runtime.events import EmotionEvent, StatsMessage
from edge_mmer.runtime.loop import RuntimeLoop
from edge_mmer.runtime.pipeline import Pipeline
from edge_mmer.runtime.settings import PipelineSettings
from edge_mmer.runtime.sinks.base import Sink
from edge_mmer.runtime.sources.files import MediaFileSource

from .resources import PassMeter, ResourceUsage
from .tracing import TracingStats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """Where a pass stops: after ``duration_s`` (stream seconds for a file, wall seconds live) or after
    ``utterances`` utterance decisions; None for both = the whole file (a live run needs one)."""

    duration_s: float | None = None
    utterances: int | None = None


@dataclass
class PassResult:
    label: str
    index: int
    start: float  # perf_counter at the start of the pass (spans are on this clock)
    end: float
    stream_s: float
    stopped_by: str
    counters: dict[str, int] = field(default_factory=dict)  # this pass's frames, chunks, events ...
    event_latency_s: list[float] = field(default_factory=list)
    drops: dict[str, Any] = field(default_factory=dict)
    cold_start_s: float | None = None

    @property
    def wall_s(self) -> float:
        return self.end - self.start


def _utterances(stats: TracingStats) -> int:
    """Utterance decisions so far: one log-mel each (cheap: that stage's list only)."""
    return len(stats.durations("log_mel"))


class _Emitter:
    """Times every ``sink.emit`` and notes when each event with a decision latency left the sink."""

    def __init__(self, sink: Sink, stats: TracingStats) -> None:
        self.sink = sink
        self.stats = stats
        self.emitted_at: list[float] = []  # perf_counter after emit, events that carry a decision latency
        self.events = 0

    def __call__(self, events: Iterable[EmotionEvent]) -> None:
        for ev in events:
            with self.stats.stage("sink"):
                self.sink.emit(ev)
            self.events += 1
            if ev.decision_latency_ms is not None:
                self.emitted_at.append(time.perf_counter())


def _event_latencies(stats: TracingStats, first_span: int, emitted_at: list[float]) -> list[float]:
    spans = stats.spans_of("decision_latency")[first_span:]
    if len(spans) != len(emitted_at):
        log.warning("profiling: %d decision-latency spans for %d emitted events; end-to-end latency not paired",
                    len(spans), len(emitted_at))
        return []
    return [t - s.start for s, t in zip(spans, emitted_at, strict=True)]


def _counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: int(after.get(k, 0) - before.get(k, 0)) for k in sorted(set(before) | set(after))}


def run_file_pass(bundle: Bundle, pipeline: Pipeline, path: Path, stats: TracingStats, usage: ResourceUsage,
                  sink: Sink, limit: Limit, *, label: str, index: int) -> PassResult:
    """One pass over ``path`` (from its start) through ``pipeline`` (fresh, or with its states reset)."""
    src = MediaFileSource(path, video=pipeline.expect_video, audio=pipeline.expect_audio)
    src.open()
    emit = _Emitter(sink, stats)
    first_latency = len(stats.spans_of("decision_latency"))
    before = dict(stats.snapshot()["counters"])
    utt0 = _utterances(stats)
    stream_end = 0.0
    stopped = "end of stream"
    with PassMeter(usage):
        start = time.perf_counter()
        try:
            chunks = src.chunks()
            while True:
                t0 = time.perf_counter()
                chunk = next(chunks, None)
                stats.record("capture_wait", time.perf_counter() - t0)
                if chunk is None:
                    break
                if limit.duration_s is not None and chunk.t >= limit.duration_s:
                    stopped = f"--duration {limit.duration_s:g} s"
                    break
                stream_end = max(stream_end, getattr(chunk, "end", chunk.t))
                emit(pipeline.feed(chunk))
                if limit.utterances is not None and _utterances(stats) - utt0 >= limit.utterances:
                    stopped = f"--utterances {limit.utterances}"
                    break
            emit(pipeline.flush())
        finally:
            src.close()
            pipeline.face_worker.close()  # the networks stay loaded for the next pass; the face thread ends
        end = time.perf_counter()
    counters = _counter_delta(before, dict(stats.snapshot()["counters"]))
    counters["utterances"] = _utterances(stats) - utt0
    counters["decisions"] = pipeline.decisions
    counters["sink_events"] = emit.events
    return PassResult(label, index, start, end, stream_end, stopped, counters,
                      _event_latencies(stats, first_latency, emit.emitted_at),
                      drops={"frames": 0, "chunks": 0,
                             "note": "file source read as fast as the pipeline takes it: nothing can be dropped"})


def new_pipeline(bundle: Bundle, variant_networks: Any, settings: PipelineSettings, stats: TracingStats, *,
                 expect_video: bool, expect_audio: bool, session_id: str) -> Pipeline:
    """A fresh pipeline on already-loaded networks (their recurrent states reset)."""
    variant_networks.reset_states()
    return Pipeline(bundle, variant_networks, settings, device_id="edge-mmer-profile", session_id=session_id,
                    expect_video=expect_video, expect_audio=expect_audio, stats=stats)


class _Stopper(threading.Thread):
    """Sets ``stop`` after ``limit.duration_s`` wall seconds or ``limit.utterances`` utterance decisions."""

    def __init__(self, stop: threading.Event, stats: TracingStats, limit: Limit) -> None:
        super().__init__(name="profile-stopper", daemon=True)
        self.stop_event = stop
        self.stats = stats
        self.limit = limit
        self.reason: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.limit.duration_s if self.limit.duration_s is not None else None
        while not self.done.wait(0.05):
            if deadline is not None and time.monotonic() >= deadline:
                self.reason = f"--duration {self.limit.duration_s:g} s"
            elif self.limit.utterances is not None and _utterances(self.stats) >= self.limit.utterances:
                self.reason = f"--utterances {self.limit.utterances}"
            if self.reason:
                self.stop_event.set()
                return


def run_loop_pass(settings: Any, stats: TracingStats, usage: ResourceUsage, sink: Sink, limit: Limit, *,
                  label: str, index: int = 0,
                  runner_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> tuple[PassResult, Any]:
    """:class:`RuntimeLoop` with ``settings`` until the stream ends or ``limit`` is reached.

    Returns the pass and the loop's :class:`RunSummary`.
    """
    stop = threading.Event()
    first_latency = len(stats.spans_of("decision_latency"))
    emitted_at: list[float] = []

    class _TimedSink(Sink):  # notes when each event left the real sink (the loop times emit() itself)
        name = sink.name

        def emit(self, event: EmotionEvent) -> None:
            sink.emit(event)
            if event.decision_latency_ms is not None:
                emitted_at.append(time.perf_counter())

        def publish_stats(self, payload: StatsMessage) -> None:
            sink.publish_stats(payload)

        def close(self) -> None:
            sink.close()

    loop = RuntimeLoop(settings, sink=_TimedSink(), stats=stats, runner_hook=runner_hook)
    stopper = _Stopper(stop, stats, limit)
    stopper.start()
    with PassMeter(usage):
        start = time.perf_counter()
        try:
            summary = loop.run(stop)
        finally:
            stopper.done.set()
            stopper.join()
        end = time.perf_counter()
    counters = {k: int(v) for k, v in summary.stats.get("counters", {}).items()}
    counters["utterances"] = _utterances(stats)
    counters["decisions"] = summary.decisions
    counters["sink_events"] = summary.events
    queue = summary.stats.get("queue", {})
    sources = {name: {k: st.get(k) for k in ("chunks", "drops", "bad_frames", "restarts", "stale", "errors",
                                             "last_error")}
               for name, st in summary.stats.get("sources", {}).items()}
    drops = {"chunks": int(queue.get("dropped", 0) or 0),
             "frames": sum(int(st.get("bad_frames") or 0) for st in sources.values()),
             "sources": sources,
             "note": "chunks: audio chunks and video frames the bounded queue dropped (oldest first) while the "
                     "pipeline was busy; frames: frames the camera delivered unreadable"}
    result = PassResult(label, index, start, end, summary.stream_s, stopper.reason or summary.stopped_by, counters,
                        _event_latencies(stats, first_latency, emitted_at), drops, summary.cold_start_s)
    return result, summary
