"""Stage timings with *when* they happened: :class:`TracingStats` is a :class:`RuntimeStats` that also
keeps every recorded duration as a span on the ``time.perf_counter`` clock.

The pipeline and the loop call ``stats.record(stage, seconds)`` right after a stage ends (that is
what ``stats.stage(...)`` does), so a span is ``[now - seconds, now]``. Two stages are recorded as
sums rather than as one block: ``vad`` (the VAD frames of one audio chunk, recorded when the chunk
is done) and ``decision_latency`` (from the VAD's end-of-utterance decision to the event, not a stage
at all but the end-to-end interval). Spans feed the profiler's timeline plot and its per-decision
consistency check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from edge_mmer.runtime.stats import RuntimeStats


@dataclass(frozen=True)
class Span:
    stage: str
    start: float  # time.perf_counter() seconds
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def overlap(self, start: float, end: float) -> float:
        """Seconds of this span inside ``[start, end]``."""
        return max(0.0, min(self.end, end) - max(self.start, start))


@dataclass
class TracingStats(RuntimeStats):
    """Keeps every duration (``keep_all``) and every span; ``origin`` is the perf_counter at creation."""

    keep_all: bool = True
    spans: list[Span] = field(default_factory=list)
    origin: float = field(default_factory=time.perf_counter)

    def record(self, stage: str, seconds: float) -> None:
        now = time.perf_counter()
        super().record(stage, seconds)
        with self._lock:
            self.spans.append(Span(stage, now - seconds, now))

    def spans_of(self, stage: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.stage == stage]
