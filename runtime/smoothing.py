"""Smoothing with hysteresis: which decisions become events.

Each decision's fuzzy-integral scores update a state ``s = alpha * scores + (1 - alpha) * s`` (the
first decision after a reset sets ``s`` directly). The announced label changes only when another
class leads the current one by at least ``hysteresis``, so one borderline utterance does not flip
the state back and forth. With ``emit = "change"`` an event is made when the announced label
changes (and for the first decision); with ``"every"``, for every decision. Independently, while the
state is live, it is re-announced every ``interval_s`` (trigger ``interval``; 0 turns this off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMIT_POLICIES = ("change", "every")


@dataclass(frozen=True)
class SmoothingSettings:
    alpha: float = 0.8  # weight of the newest decision (1 = no smoothing)
    hysteresis: float = 0.05  # lead a new label needs over the announced one
    emit: str = "change"  # "change" or "every"
    interval_s: float = 15.0  # re-announce the current state this often (0 = never)

    def validate(self, prefix: str = "decision") -> None:
        from edge_mmer.config import ConfigError

        if not 0 < self.alpha <= 1:
            raise ConfigError(f"config key '{prefix}.alpha': expected 0 < alpha <= 1, got {self.alpha!r}")
        if not 0 <= self.hysteresis < 1:
            raise ConfigError(f"config key '{prefix}.hysteresis': expected 0 <= h < 1, got {self.hysteresis!r}")
        if self.emit not in EMIT_POLICIES:
            raise ConfigError(f"config key '{prefix}.emit': expected one of {list(EMIT_POLICIES)}, got {self.emit!r}")
        if self.interval_s < 0:
            raise ConfigError(f"config key '{prefix}.interval_s': expected >= 0, got {self.interval_s!r}")


class Smoother:
    def __init__(self, settings: SmoothingSettings) -> None:
        settings.validate()
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self.scores: np.ndarray | None = None
        self.label: int | None = None
        self.last_emit_t: float | None = None

    def update(self, scores: np.ndarray) -> bool:
        """Take one decision's scores; True when an event should be made for it."""
        x = np.asarray(scores, dtype=np.float64)
        a = self.settings.alpha
        self.scores = x.copy() if self.scores is None else a * x + (1 - a) * self.scores
        lead = int(np.argmax(self.scores))
        changed = self.label is None or (
            lead != self.label and self.scores[lead] - self.scores[self.label] >= self.settings.hysteresis)
        if changed:
            self.label = lead
        return changed or self.settings.emit == "every"

    def heartbeat_due(self, t: float) -> bool:
        """A live state not announced for ``interval_s``."""
        iv = self.settings.interval_s
        return iv > 0 and self.label is not None and self.last_emit_t is not None and t - self.last_emit_t >= iv
