"""What the loop tells the service manager, and when: the liveness rule behind ``WatchdogSec=``.

systemd restarts a ``Type=notify`` service whose ``WATCHDOG=1`` pings stop for ``WatchdogSec``. A
process that is alive is not enough: a loop whose capture thread hangs in a driver, or whose
pipeline is stuck, still runs. So the loop pings only while the stream moves — a chunk was fed
within the last half-period and the pipeline's stream clock went forward — and a stall stops the
pings within half a period (``sd_watchdog_enabled(3)`` asks for a ping every half period). The
in-process watchdog (:mod:`edge_mmer.runtime.watchdog`) restarts a stalled source first; systemd's
restart is the next level, for what a restart inside the process cannot fix.

The loop calls :meth:`Heartbeat.ready` once its sources and runners are up, :meth:`Heartbeat.progress`
after each chunk it fed, :meth:`Heartbeat.tick` on every turn (also when no chunk came), and
:meth:`Heartbeat.stopping` when it starts to shut down. ``STATUS=`` (what ``systemctl status``
shows) carries the events, queue drops and source restarts, every few seconds, and says so when the
input stalls. Without ``$NOTIFY_SOCKET`` every call returns at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from .notify import Notifier, watchdog_interval_s

log = logging.getLogger(__name__)

__all__ = ["Heartbeat", "stats_fields", "status_line"]

STATUS_EVERY_S = 5.0


class _Supervised(Protocol):
    """What :func:`status_line` reads of a supervised source."""

    def stats(self) -> dict[str, Any]: ...


def status_line(events: int, supervisors: Sequence[_Supervised]) -> str:
    """``"120 events; queue drops 0; source restarts 1"``: the figures an operator looks for first."""
    figures = [s.stats() for s in supervisors]
    drops = sum(int(f.get("drops") or 0) for f in figures)
    restarts = sum(int(f.get("restarts") or 0) for f in figures)
    return f"{events} events; queue drops {drops}; source restarts {restarts}"


class _Stats(Protocol):
    """What :func:`stats_fields` reads of a :class:`~edge_mmer.runtime.events.StatsMessage`."""

    @property
    def uptime_s(self) -> float: ...
    @property
    def stages(self) -> dict[str, dict[str, float]]: ...
    @property
    def counters(self) -> dict[str, int]: ...
    @property
    def drops(self) -> int: ...


def stats_fields(msg: _Stats, restarts: Mapping[str, int]) -> dict[str, Any]:
    """The periodic statistics as log fields (``--log-format json``): counters, drops, restarts, latency."""
    lat = msg.stages.get("decision_latency", {})
    return {"uptime_s": round(msg.uptime_s, 1), "events": int(msg.counters.get("events", 0)),
            "counters": dict(msg.counters), "queue_drops": int(msg.drops),
            "source_restarts": int(sum(restarts.values())), "restarts_by_source": dict(restarts),
            "decision_latency_p50_ms": round(float(lat.get("p50", 0.0)), 2),
            "decision_latency_p90_ms": round(float(lat.get("p90", 0.0)), 2)}


class Heartbeat:
    """The loop's notify messages; ``watchdog_s`` None: no watchdog pings (``STATUS=`` only)."""

    def __init__(self, notifier: Notifier | None = None, watchdog_s: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic, status_every_s: float = STATUS_EVERY_S) -> None:
        self.notifier = notifier or Notifier(None)
        self.watchdog_s = watchdog_s
        self.ping_every_s = None if watchdog_s is None else watchdog_s / 2
        self.status_every_s = status_every_s
        self.clock = clock
        self.pings = 0
        self._ready = False
        self._last_ping = float("-inf")
        self._last_status = float("-inf")
        self._last_progress = float("-inf")
        self._last_clock: float | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Heartbeat:
        """From ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC`` / ``$WATCHDOG_PID`` (what systemd sets)."""
        notifier = Notifier.from_environment(environ)
        return cls(notifier, watchdog_interval_s(environ) if notifier.enabled else None)

    @property
    def enabled(self) -> bool:
        return self.notifier.enabled

    def ready(self, status: str) -> None:
        """Sources and runners are up: ``READY=1``. The stream counts as moving from here."""
        if not self.enabled:
            return
        now = self.clock()
        self._ready = True
        self._last_progress = now
        self.notifier.send(READY=1, STATUS=status)
        self._last_status = now
        if self.watchdog_s is not None:
            log.info("service manager: ready; watchdog every %.1f s (pings only while the stream moves)",
                     self.watchdog_s)
        else:
            log.info("service manager: ready (no watchdog asked for)")

    def progress(self, stream_clock: float | None) -> None:
        """A chunk was fed; it counts when the pipeline's stream clock went forward."""
        if not self.enabled or stream_clock is None:
            return
        if self._last_clock is None or stream_clock > self._last_clock:
            self._last_clock = stream_clock
            self._last_progress = self.clock()

    def tick(self, status: Callable[[], str]) -> None:
        """Every turn of the loop: ``WATCHDOG=1`` when one is due and the stream moved within the last
        half period; ``STATUS=`` every few seconds (``status`` is only called then)."""
        if not self._ready:
            return
        now = self.clock()
        idle = now - self._last_progress
        fields: dict[str, str | int] = {}
        half = self.ping_every_s
        if half is not None and now - self._last_ping >= half and idle < half:
            fields["WATCHDOG"] = 1
        if now - self._last_status >= self.status_every_s:
            stalled = half is not None and idle >= half
            fields["STATUS"] = (f"stalled: no input for {idle:.0f} s; " if stalled else "running: ") + status()
        if fields and self.notifier.send(**fields):
            if "WATCHDOG" in fields:
                self._last_ping = now
                self.pings += 1
            if "STATUS" in fields:
                self._last_status = now

    def stopping(self, status: str) -> None:
        """Shutting down: ``STOPPING=1`` (the pings end here)."""
        if not self.enabled:
            return
        self._ready = False
        self.notifier.send(STOPPING=1, STATUS=status)

    def close(self) -> None:
        self.notifier.close()
