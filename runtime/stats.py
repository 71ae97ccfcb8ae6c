"""Per-stage timing and counters of the running loop (what ``--stats`` and the profiler report).

``with stats.stage("speech_encoder"): ...`` records one duration. Each stage keeps a bounded
window of recent durations (so a loop running for weeks holds constant memory) plus lifetime
count and total; :meth:`RuntimeStats.snapshot` summarises them (count, mean, p50, p90, p95, p99, max
in milliseconds). Counters (``stats.count("frames_dropped")``) are plain integers.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STAGES = (
    "capture_wait", "vad", "log_mel", "speech_encoder", "face_detection", "face_motion", "face_wait", "speaker",
    "face_encoder", "speech_context", "face_context", "mask", "fusion", "svm", "fuzzy", "decision", "sink",
)


def summarise_ms(durations_s: Any) -> dict[str, float]:
    """count, mean, p50, p90, p95, p99, max (milliseconds) of durations in seconds."""
    arr = np.asarray(durations_s, dtype=np.float64) * 1000.0
    if arr.size == 0:
        return {"count": 0, "mean": 0.0, "p50": 0.0, "p90": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    p50, p90, p95, p99 = np.percentile(arr, [50, 90, 95, 99])
    return {"count": int(arr.size), "mean": float(arr.mean()), "p50": float(p50), "p90": float(p90),
            "p95": float(p95), "p99": float(p99), "max": float(arr.max())}


@dataclass
class _Stage:
    recent: collections.deque[float]
    count: int = 0
    total_s: float = 0.0


@dataclass
class RuntimeStats:
    """Thread-safe stage timers and counters. ``window`` bounds the durations kept per stage."""

    window: int = 2048
    keep_all: bool = False  # the profiler keeps every duration
    _stages: dict[str, _Stage] = field(default_factory=dict)
    _all: dict[str, list[float]] = field(default_factory=dict)
    _counters: dict[str, int] = field(default_factory=lambda: collections.defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    started: float = field(default_factory=time.monotonic)

    def record(self, stage: str, seconds: float) -> None:
        with self._lock:
            st = self._stages.get(stage)
            if st is None:
                st = self._stages[stage] = _Stage(collections.deque(maxlen=self.window))
            st.recent.append(seconds)
            st.count += 1
            st.total_s += seconds
            if self.keep_all:
                self._all.setdefault(stage, []).append(seconds)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.record(name, time.perf_counter() - t0)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] += n

    def set(self, name: str, value: int) -> None:
        with self._lock:
            self._counters[name] = value

    def durations(self, stage: str) -> list[float]:
        """Every duration (``keep_all``) or the recent window, in seconds."""
        with self._lock:
            if self.keep_all:
                return list(self._all.get(stage, []))
            st = self._stages.get(stage)
            return list(st.recent) if st else []

    def snapshot(self) -> dict[str, Any]:
        """Stages (ms summaries of the recent window + lifetime count/total) and counters."""
        with self._lock:
            stages = {}
            for name, st in self._stages.items():
                s = summarise_ms(list(st.recent))
                s["lifetime_count"] = st.count
                s["lifetime_total_ms"] = st.total_s * 1000.0
                stages[name] = s
            counters = dict(self._counters)
        return {"uptime_s": time.monotonic() - self.started, "stages": stages, "counters": counters}
