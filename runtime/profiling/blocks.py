"""The profile document's computed blocks: one variant's pipeline figures, and the comparison of variants.

:func:`pipeline_block` sums a variant's passes into stage summaries, latencies, throughput, drops and
the consistency checks (:mod:`.analysis`); :func:`comparison` puts every variant beside the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import analysis
from .passes import PassResult
from .resources import ResourceUsage
from .tracing import TracingStats

__all__ = ["SPEEDUP_DEFINITION", "comparison", "pipeline_block"]

SPEEDUP_DEFINITION = "speed-up = baseline / variant for latencies (> 1: the variant is faster); " \
                     "for the real-time factor, variant / baseline"


def pipeline_block(stats: TracingStats, passes: Sequence[PassResult], usage: ResourceUsage, source: dict[str, Any],
                    hangover_ms: int, origin: float | None = None) -> dict[str, Any]:
    """One variant's pipeline figures; ``origin`` (perf_counter) dates the passes (``start_s``)."""
    origin = min(p.start for p in passes) if origin is None and passes else origin
    stages = analysis.stage_summaries(stats)
    latency = analysis.latency_summary(stats.durations("decision_latency"))
    event_lat = analysis.latency_summary([x for p in passes for x in p.event_latency_s])
    wall = sum(p.wall_s for p in passes)
    stream = sum(p.stream_s for p in passes)
    counters: dict[str, int] = {}
    for p in passes:
        for k, v in p.counters.items():
            counters[k] = counters.get(k, 0) + int(v)
    windows = analysis.pass_windows(stats, passes)
    events_with_latency = int(event_lat["count"]) if all(p.event_latency_s or not p.counters.get("events")
                                                         for p in passes) else None
    checks = analysis.consistency_checks(stages, wall * 1000.0, windows.to_record(), int(latency["count"]),
                                         events_with_latency, counters.get("decisions"))
    frames_dropped = sum(int(p.drops.get("frames", 0) or 0) for p in passes)
    chunks_dropped = sum(int(p.drops.get("chunks", 0) or 0) for p in passes)
    cold = [p.cold_start_s for p in passes if p.cold_start_s is not None]
    sources: dict[str, Any] = {}
    for p in passes:
        sources.update(p.drops.get("sources") or {})
    return {
        "source": source,
        "passes": [{"index": p.index, "start_s": p.start - (origin or 0.0), "wall_s": p.wall_s, "stream_s": p.stream_s,
                    "stopped_by": p.stopped_by,
                    "realtime_factor": p.stream_s / p.wall_s if p.wall_s > 0 else None, "counters": p.counters,
                    "drops": p.drops} for p in passes],
        "wall_s": wall,
        "stream_s": stream,
        "stages": stages,
        "decision_latency_ms": latency,
        "event_latency_ms": event_lat,
        "vad_hangover_ms": hangover_ms,
        "throughput": {
            "realtime_factor": stream / wall if wall > 0 else None,
            "analysed_fps": counters.get("frames_analysed", 0) / wall if wall > 0 else None,
            "frames_per_s": counters.get("frames", 0) / wall if wall > 0 else None,
            "frames": counters.get("frames", 0),
            "frames_analysed": counters.get("frames_analysed", 0),
            "audio_chunks": counters.get("audio_chunks", 0),
            "utterances": counters.get("utterances", 0),
            "decisions": counters.get("decisions", 0),
            "events": counters.get("sink_events", counters.get("events", 0)),
            "events_with_latency": events_with_latency,
        },
        "drops": {"frames": frames_dropped, "chunks": chunks_dropped, "sources": sources,
                  "note": passes[0].drops.get("note", "") if passes else ""},
        "resources": usage.to_record(),
        "cold_start_s": cold[0] if cold else None,
        "decision_windows": windows.to_record(),
        "consistency": {"ok": all(c.ok for c in checks), "tolerance": analysis.LATENCY_TOLERANCE,
                        "checks": [c.to_record() for c in checks]},
    }


def comparison(variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Speed-ups of every variant over the first (None for one variant)."""
    if len(variants) < 2:
        return None
    base = variants[0]
    out: dict[str, Any] = {"baseline": base["label"], "definition": SPEEDUP_DEFINITION, "pipeline": {}, "micro": {}}
    for v in variants[1:]:
        bp, vp = base.get("pipeline"), v.get("pipeline")
        if bp and vp:
            lat = analysis.speedups({"decision_latency": bp["decision_latency_ms"],
                                     "event_latency": bp["event_latency_ms"]},
                                    {"decision_latency": vp["decision_latency_ms"],
                                     "event_latency": vp["event_latency_ms"]})
            b_rtf, v_rtf = bp["throughput"]["realtime_factor"], vp["throughput"]["realtime_factor"]
            out["pipeline"][v["label"]] = {
                "stages": analysis.speedups(bp["stages"], vp["stages"]),
                **lat,
                "wall": bp["wall_s"] / vp["wall_s"] if vp["wall_s"] > 0 else None,
                "realtime_factor": v_rtf / b_rtf if b_rtf and v_rtf else None,
            }
        bm, vm = base.get("micro"), v.get("micro")
        if bm and vm:
            out["micro"][v["label"]] = analysis.speedups({n: r["latency_ms"] for n, r in bm.items()},
                                                         {n: r["latency_ms"] for n, r in vm.items()})
    return out
