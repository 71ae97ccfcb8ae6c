"""Smoothing with hysteresis: which decisions become events.

Each decision's fuzzy-integral scores update a state ``s = alpha * scores + (1 - alpha) * s`` (the
first decision after a reset sets ``s`` directly). The announced label changes only when another
class leads the current one by at least ``hysteresis``, so one borderline utterance does not flip
the state back and forth. With ``emit = "change"`` an event is made when the announced label
changes (and for the first decision); with ``"every"``, for every decision. Independently, while the
state is live, it is re-announced every ``interval_s`` (trigger ``interval``; 0 turns this off).

The rules' settings are the ``[decision]`` section, :class:`~edge_mmer.runtime.settings.DecisionSettings`.
"""

from __future__ import annotations

import numpy as np

from edge_mmer.runtime.settings import EMIT_POLICIES, DecisionSettings

__all__ = ["EMIT_POLICIES", "DecisionSettings", "Smoother", "SmoothingSettings"]

SmoothingSettings = DecisionSettings
"""The name the smoothing rules' settings had before ``[decision]`` was declared once."""


class Smoother:
    def __init__(self, settings: DecisionSettings) -> None:
        settings.validate()
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self.scores: np.ndarray | None = None
        self.label: int | None = None
        self._last_emit_t: float | None = None

    @property
    def last_emit_t(self) -> float | None:
        """Stream time of the last event made from this state (None: none since the reset)."""
        return self._last_emit_t

    def mark_emitted(self, t: float) -> None:
        """An event was made from the current state at stream time ``t`` (the heartbeat counts from it)."""
        self._last_emit_t = t

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
        return iv > 0 and self.label is not None and self._last_emit_t is not None and t - self._last_emit_t >= iv
