"""Events and statistics as the loop makes them, and a sink that keeps what it is given."""

from __future__ import annotations

from edge_mmer.runtime.events import EmotionEvent, StatsMessage, channel_result, utc_now_iso
from edge_mmer.runtime.sinks.base import Sink

LABELS = ("neutral", "happy", "angry", "sad")


def make_stats(device_id: str = "robot-1", **counters: int) -> StatsMessage:
    """A statistics message as the loop sends it."""
    return StatsMessage(device_id=device_id, wall_time=utc_now_iso(), uptime_s=1.5,
                        stages={"vad": {"count": 3, "p50": 0.4}}, counters=dict(counters), sources={}, drops=0)


def make_event(seq: int, *, device_id: str = "robot-1", session_id: str = "session-a", model_id: str = "demo",
               face: bool = True) -> EmotionEvent:
    """A schema-valid event; the label cycles with ``seq`` so consecutive events differ."""
    k = seq % len(LABELS)
    probs = [0.1] * len(LABELS)
    probs[k] = 0.7
    fused = channel_result(LABELS, probs)
    speech = channel_result(LABELS, list(reversed(probs)))
    return EmotionEvent(
        device_id=device_id, session_id=session_id, seq=seq, wall_time=utc_now_iso(), monotonic_s=10.0 + seq,
        trigger="utterance", utterance=(9.0 + seq, 9.8 + seq), label=fused.label, confidence=fused.confidence,
        scores=fused.scores, channels={"speech": speech, "face": fused if face else None, "fused": fused},
        decision_latency_ms=12.5, model_id=model_id, synthetic_model=True)


class ListSink(Sink):
    """Keeps every event and statistics message in memory, and whether it was closed."""

    name = "list"

    def __init__(self) -> None:
        self.events: list[EmotionEvent] = []
        self.stats: list[StatsMessage] = []
        self.closed = False

    def emit(self, event: EmotionEvent) -> None:
        self.events.append(event)

    def publish_stats(self, stats: StatsMessage) -> None:
        self.stats.append(stats)

    def close(self) -> None:
        self.closed = True
