"""The sink contract: ``emit(event)``, ``publish_stats(stats)``, ``close()``."""

from __future__ import annotations

from abc import ABC, abstractmethod

from edge_mmer.errors import SinkError as SinkError  # re-exported: raised by every sink
from edge_mmer.runtime.events import EmotionEvent, StatsMessage


class Sink(ABC):
    """Where events go. ``emit`` must not block the pipeline for long (MQTT spools instead)."""

    name: str = "sink"

    @abstractmethod
    def emit(self, event: EmotionEvent) -> None: ...

    def publish_stats(self, stats: StatsMessage) -> None:  # noqa: B027 - optional for sinks
        """Periodic runtime statistics (per-stage latency, fps, drops); sinks may ignore them."""

    @property
    def failure(self) -> SinkError | None:
        """Set when the sink cannot go on (e.g. its threads keep dying); the running loop stops with it."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
