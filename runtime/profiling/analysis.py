"""From recorded timings to the figures a profile reports, and the checks that they add up.

Stages nest: ``svm`` and ``fuzzy`` run inside ``decision``; ``face_detection`` (an analysed frame)
and ``face_motion`` (the mouth motion of the other frames) run beside the decision path, in the face
worker's thread (:data:`BESIDE`); every other stage of :data:`~edge_mmer.runtime.stats.STAGES` is top
level (they never overlap in the calling thread).
``decision_latency`` is not a stage but the end-to-end interval of one decision: from the VAD's
end-of-utterance decision (or a face-only window's trigger) to the event.

Consistency checks (:func:`consistency_checks`), computed from sums only, so the JSON carries
what is needed to re-check them (:func:`edge_mmer.runtime.profiling.schema.validate_profile`):

* ``stages_within_wall`` — the top-level stage totals fit in the wall time of the timed passes, and
  so do the face worker's;
* ``nested_within_parent`` — ``svm`` + ``fuzzy`` fit in ``decision``;
* ``decision_path_inside_latency`` — the decision path's stages (log-mel, encoders, context steps,
  mask, fusion, decision) ran inside the decision-latency windows: all of their time when every
  decision became an event (``--emit every``), at most all of it otherwise;
* ``latency_accounted`` — the time stages spent inside the decision windows is within a tolerance
  of the decision latency (the rest is untimed glue: crop lookup, smoothing, building the event);
* ``latency_counts`` — one latency per event that carries one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edge_mmer.runtime.stats import STAGES, RuntimeStats, summarise_ms

from .tracing import Span, TracingStats

NESTED = {"svm": "decision", "fuzzy": "decision"}
BESIDE = ("face_detection", "face_motion")  # the face worker's thread: overlaps the calling thread's stages
TOP_LEVEL = tuple(s for s in STAGES if s not in NESTED and s not in BESIDE)
DECISION_PATH = ("log_mel", "speech_encoder", "speech_context", "face_encoder", "face_context", "mask", "fusion",
                 "decision")
LATENCY = "decision_latency"
ABS_SLACK_MS = 1.0  # timer reads and span bookkeeping, per check
REL_SLACK = 0.01
WINDOW_SHIFT_MS = 1.0
"""Per decision: the pipeline records ``decision_latency`` after building the event, so the recorded
window sits later than the measured interval by the event-building time (0.1-0.3 ms on a 2-core x86);
that much of a decision's first stage can fall before its recorded window."""
LATENCY_TOLERANCE = 0.25  # at least 75 % of a decision's latency is inside timed stages


def stage_summaries(stats: RuntimeStats) -> dict[str, dict[str, Any]]:
    """Per stage (pipeline order, then any other): count/mean/p50/p90/p95/p99/max ms, total_ms, nested_in."""
    names = [s for s in STAGES if stats.durations(s)]
    snap = stats.snapshot()["stages"]
    names += sorted(n for n in snap if n not in names and n != LATENCY)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        d = stats.durations(name)
        s: dict[str, Any] = summarise_ms(d)
        s["total_ms"] = float(np.sum(d)) * 1000.0
        s["nested_in"] = NESTED.get(name)
        out[name] = s
    return out


def latency_summary(durations_s: Sequence[float]) -> dict[str, Any]:
    s: dict[str, Any] = summarise_ms(list(durations_s))
    s["total_ms"] = float(np.sum(durations_s)) * 1000.0 if len(durations_s) else 0.0
    return s


@dataclass
class WindowSums:
    """Stage time inside the decision-latency windows (ms)."""

    count: int = 0
    latency_total_ms: float = 0.0
    stages_total_ms: float = 0.0  # every top-level stage's time inside each window, summed over windows
    decision_path_total_ms: float = 0.0  # the decision path's time inside each window, summed over windows
    decision_path_in_windows_ms: float = 0.0  # the decision path's time inside the union of the windows

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, other: WindowSums) -> None:
        self.count += other.count
        self.latency_total_ms += other.latency_total_ms
        self.stages_total_ms += other.stages_total_ms
        self.decision_path_total_ms += other.decision_path_total_ms
        self.decision_path_in_windows_ms += other.decision_path_in_windows_ms


def _union(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _inside(stages: Sequence[Span], starts: np.ndarray, max_len: float, lo: float,
            hi: float) -> list[tuple[Span, float]]:
    a = int(np.searchsorted(starts, lo - max_len, side="left"))
    b = int(np.searchsorted(starts, hi, side="right"))
    return [(s, ov) for s in stages[a:b] if (ov := s.overlap(lo, hi)) > 0]


def window_sums(spans: Sequence[Span], start: float | None = None, end: float | None = None) -> WindowSums:
    """Stage time inside the ``decision_latency`` spans (optionally only those within [start, end])."""
    windows = [s for s in spans if s.stage == LATENCY
               and (start is None or s.start >= start) and (end is None or s.end <= end)]
    stages = sorted((s for s in spans if s.stage in TOP_LEVEL), key=lambda s: s.start)
    starts = np.array([s.start for s in stages]) if stages else np.zeros(0)
    max_len = max((s.duration for s in stages), default=0.0)
    out = WindowSums()
    for w in windows:
        inside = _inside(stages, starts, max_len, w.start, w.end)
        out.count += 1
        out.latency_total_ms += w.duration * 1000.0
        out.stages_total_ms += sum(ov for _, ov in inside) * 1000.0
        out.decision_path_total_ms += sum(ov for s, ov in inside if s.stage in DECISION_PATH) * 1000.0
    for lo, hi in _union([(w.start, w.end) for w in windows]):
        out.decision_path_in_windows_ms += sum(ov for s, ov in _inside(stages, starts, max_len, lo, hi)
                                               if s.stage in DECISION_PATH) * 1000.0
    return out


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    lhs: float
    rhs: float

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def _le(lhs: float, rhs: float) -> bool:
    return lhs <= rhs * (1.0 + REL_SLACK) + ABS_SLACK_MS


def consistency_checks(stages: Mapping[str, Mapping[str, Any]], wall_ms: float, windows: Mapping[str, Any],
                       latency_count: int, events_with_latency: int | None, decisions: int | None = None,
                       tolerance: float = LATENCY_TOLERANCE) -> list[Check]:
    """The checks of the module docstring, from per-stage totals, the timed wall time and window sums.

    ``decisions``: decisions taken; when every one became an event with a latency, all the decision
    path's time must lie inside the windows (otherwise only at most all of it).
    """
    totals = {n: float(s.get("total_ms", 0.0)) for n, s in stages.items()}
    top = sum(v for n, v in totals.items() if n not in NESTED and n not in BESIDE)
    beside = sum(totals.get(n, 0.0) for n in BESIDE)
    checks = [Check("stages_within_wall", _le(top, wall_ms) and _le(beside, wall_ms),
                    f"top-level stages {top:.1f} ms and the face worker's {beside:.1f} ms each <= wall "
                    f"{wall_ms:.1f} ms (+{REL_SLACK:.0%} + {ABS_SLACK_MS} ms); {top / wall_ms:.1%} of the wall time "
                    "is inside timed stages" if wall_ms > 0 else "no wall time", max(top, beside), wall_ms)]
    for parent in sorted(set(NESTED.values())):
        kids = sum(totals.get(k, 0.0) for k, p in NESTED.items() if p == parent)
        checks.append(Check("nested_within_parent", _le(kids, totals.get(parent, 0.0)),
                            f"{' + '.join(k for k, p in NESTED.items() if p == parent)} {kids:.2f} ms <= "
                            f"{parent} {totals.get(parent, 0.0):.2f} ms", kids, totals.get(parent, 0.0)))
    n = int(windows.get("count", 0))
    lat = float(windows.get("latency_total_ms", 0.0))
    inside = float(windows.get("stages_total_ms", 0.0))
    path_in = float(windows.get("decision_path_in_windows_ms", 0.0))
    path_all = sum(totals.get(k, 0.0) for k in DECISION_PATH)
    every = decisions is not None and decisions == latency_count
    ok = _le(path_in, path_all) and (not every or path_in >= path_all * (1.0 - REL_SLACK) - WINDOW_SHIFT_MS * n)
    checks.append(Check("decision_path_inside_latency", ok,
                        f"{n} decisions: decision-path stages inside the decision-latency windows {path_in:.2f} ms "
                        f"{'=' if every else '<='} their total {path_all:.2f} ms"
                        + (f" (-{REL_SLACK:.0%} - {WINDOW_SHIFT_MS:g} ms per decision)" if every else "")
                        + ("" if every else f" ({decisions} decisions, {latency_count} with a latency)"),
                        path_in, path_all))
    if n:
        ratio = inside / lat if lat > 0 else 0.0
        ok = _le(inside, lat) and inside >= (1.0 - tolerance) * lat - ABS_SLACK_MS * n
        checks.append(Check("latency_accounted", ok,
                            f"stages inside the decision windows {inside:.2f} ms = {ratio:.1%} of the decision "
                            f"latency {lat:.2f} ms (expected {1 - tolerance:.0%}..100 %; the rest is untimed glue)",
                            inside, lat))
    if events_with_latency is not None:
        checks.append(Check("latency_counts", latency_count == events_with_latency == n,
                            f"{latency_count} latencies recorded, {events_with_latency} events with a latency, "
                            f"{n} decision windows", float(latency_count), float(events_with_latency)))
    return checks


def pass_windows(stats: TracingStats, passes: Sequence[Any]) -> WindowSums:
    """Window sums over the given passes (each has ``start`` / ``end`` on the perf_counter clock)."""
    total = WindowSums()
    for p in passes:
        total.add(window_sums(stats.spans, p.start, p.end))
    return total


def speedups(base: Mapping[str, Mapping[str, Any]], other: Mapping[str, Mapping[str, Any]],
             keys: Sequence[str] = ("p50", "mean")) -> dict[str, dict[str, float | None]]:
    """Per name in both: baseline / other for each statistic (> 1: ``other`` is faster)."""
    out: dict[str, dict[str, float | None]] = {}
    for name in base:
        if name not in other:
            continue
        row: dict[str, float | None] = {}
        for k in keys:
            b, o = float(base[name].get(k, 0.0)), float(other[name].get(k, 0.0))
            row[k] = b / o if o > 0 and b > 0 else None
        out[name] = row
    return out
