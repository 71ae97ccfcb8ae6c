"""The messages the runtime sends: the emotion event and the statistics message, one versioned
JSON shape each, on every sink.

The event's schema lives in ``schema/emotion-event.v1.json`` (JSON Schema 2020-12); docs/running.md
("The event") documents it and the tests validate every event the runtime produces against it. Both
messages are built here and only here (``to_dict`` -> dict, ``to_json`` -> one line of JSON), so no
sink can drift from them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import resources
from typing import Any

SCHEMA_ID = "edge-mmer/emotion-event/v1"
STATS_SCHEMA_ID = "edge-mmer/stats/v1"
TRIGGERS = ("utterance", "face_only", "interval")


@dataclass(frozen=True)
class ChannelResult:
    """One channel's LIBSVM outcome (speech, face or fused)."""

    label: str
    confidence: float
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence, "scores": dict(self.scores)}


def scores_by_label(labels: tuple[str, ...] | list[str], values: Any) -> dict[str, float]:
    """Class scores as ``{label: value}``, rounded to 6 decimals and clipped to [0, 1]."""
    out = {}
    for name, v in zip(labels, values, strict=True):
        x = float(v)
        if not math.isfinite(x):
            raise ValueError(f"score for {name!r} is not finite: {x}")
        out[name] = round(min(1.0, max(0.0, x)), 6)
    return out


def channel_result(labels: tuple[str, ...] | list[str], probs: Any) -> ChannelResult:
    """(K,) probabilities -> :class:`ChannelResult`."""
    scores = scores_by_label(labels, probs)
    best = max(scores, key=lambda k: scores[k])
    return ChannelResult(label=best, confidence=scores[best], scores=scores)


def utc_now_iso() -> str:
    """Now, UTC, ISO 8601 with milliseconds and a ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class EmotionEvent:
    """One event. ``label``/``confidence``/``scores`` are the announced (smoothed) state."""

    device_id: str
    session_id: str
    seq: int
    wall_time: str
    monotonic_s: float
    trigger: str
    utterance: tuple[float, float] | None
    label: str
    confidence: float
    scores: dict[str, float]
    channels: dict[str, ChannelResult | None]
    decision_latency_ms: float | None
    model_id: str
    synthetic_model: bool
    extra: dict[str, Any] = field(default_factory=dict)  # not serialised; for in-process consumers
    speaker: dict[str, Any] | None = None  # whose face the decision used (track id, box, speaking score)
    people: list[dict[str, Any]] | None = None  # the other people in view and their face results, when asked

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_ID,
            "device_id": self.device_id,
            "session_id": self.session_id,
            "seq": self.seq,
            "wall_time": self.wall_time,
            "monotonic_s": round(self.monotonic_s, 6),
            "trigger": self.trigger,
            "utterance": None if self.utterance is None
            else {"start_s": round(self.utterance[0], 6), "end_s": round(self.utterance[1], 6)},
            "label": self.label,
            "confidence": self.confidence,
            "scores": dict(self.scores),
            "channels": {k: (None if v is None else v.to_dict()) for k, v in self.channels.items()},
            "decision_latency_ms": None if self.decision_latency_ms is None else round(self.decision_latency_ms, 3),
            "model_id": self.model_id,
            "synthetic_model": self.synthetic_model,
            **({} if self.speaker is None else {"speaker": self.speaker}),
            **({} if self.people is None else {"people": self.people}),
        }

    def to_json(self) -> str:
        """One line of compact JSON (no NaN: scores are checked when built)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class StatsMessage:
    """Periodic runtime statistics: per-stage latency summaries (ms), counters, per-source figures
    and queue drops (:meth:`~edge_mmer.runtime.stats.RuntimeStats.snapshot` plus the loop's own);
    a sink may add its own figures under its name (:meth:`with_sink`, e.g. ``"mqtt"``)."""

    device_id: str
    wall_time: str
    uptime_s: float
    stages: dict[str, dict[str, float]]
    counters: dict[str, int]
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    drops: int = 0
    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)  # sink name -> its own figures

    @classmethod
    def from_snapshot(cls, device_id: str, snapshot: Mapping[str, Any], *, sources: Mapping[str, Any] | None = None,
                      drops: int = 0, wall_time: str | None = None) -> StatsMessage:
        """From :meth:`RuntimeStats.snapshot` (``uptime_s``, ``stages``, ``counters``)."""
        return cls(device_id=device_id, wall_time=wall_time or utc_now_iso(), uptime_s=float(snapshot["uptime_s"]),
                   stages=dict(snapshot["stages"]), counters=dict(snapshot["counters"]),
                   sources=dict(sources or {}), drops=int(drops))

    def with_sink(self, name: str, figures: Mapping[str, Any], *, device_id: str | None = None) -> StatsMessage:
        """This message with a sink's own figures added under ``name`` (stamped with the sink's device id)."""
        return replace(self, sinks={**self.sinks, name: dict(figures)},
                       device_id=self.device_id if device_id is None else device_id)

    def figures(self) -> dict[str, Any]:
        """The statistics alone (what :class:`~edge_mmer.runtime.loop.RunSummary` keeps)."""
        return {"uptime_s": self.uptime_s, "stages": self.stages, "counters": self.counters,
                "sources": self.sources, "drops": self.drops}

    def to_dict(self) -> dict[str, Any]:
        return {"schema": STATS_SCHEMA_ID, "device_id": self.device_id, "wall_time": self.wall_time,
                **self.figures(), **self.sinks}

    def to_json(self) -> str:
        """One line of compact JSON; a non-finite figure is written as a JS literal rather than losing the message."""
        body = self.to_dict()
        try:
            return json.dumps(body, separators=(",", ":"), default=str, allow_nan=False)
        except ValueError:
            return json.dumps(body, separators=(",", ":"), default=str)


def load_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`EmotionEvent` (for validation and the docs)."""
    text = resources.files("edge_mmer.runtime").joinpath("schema/emotion-event.v1.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
