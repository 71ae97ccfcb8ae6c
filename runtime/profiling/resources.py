"""What a run cost the process: CPU time over wall time, and peak resident memory.

CPU % is the process's user + system CPU time (every thread: ONNX Runtime's intra-op pool, PyAV's
decoder threads) over the wall time, so it can exceed 100 % on a multi-core machine;
``cpu_percent_of_machine`` divides by the cores this process may use. Peak RSS is ``VmHWM`` from
``/proc/self/status`` (Linux), else ``ru_maxrss``. On Linux the high-water mark can be reset
(``/proc/self/clear_refs``), so each timed pass reports its own peak; elsewhere it is the process
lifetime's peak (said in ``peak_rss_scope``).
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def peak_rss_bytes() -> int | None:
    """The process's peak resident set size: VmHWM, else ru_maxrss (kB on Linux, bytes on macOS)."""
    with contextlib.suppress(OSError):
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if not rss:
        return None
    return int(rss) if sys.platform == "darwin" else int(rss) * 1024


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return float(ru.ru_utime + ru.ru_stime)


@dataclass(frozen=True)
class ResourceMark:
    wall: float
    cpu: float


def mark() -> ResourceMark:
    return ResourceMark(time.perf_counter(), cpu_seconds())


@dataclass
class ResourceUsage:
    """Accumulated over one or more passes (``add``)."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_bytes: int | None = None
    peak_rss_scope: str = "pass"  # "pass" (reset before each pass) or "process" (lifetime peak)
    cores: int = 1

    def add(self, start: ResourceMark, end: ResourceMark, peak: int | None, scope: str) -> None:
        self.wall_s += end.wall - start.wall
        self.cpu_s += end.cpu - start.cpu
        if peak is not None:
            self.peak_rss_bytes = max(peak, self.peak_rss_bytes or 0)
        if scope == "process":
            self.peak_rss_scope = "process"

    @property
    def cpu_percent(self) -> float | None:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s > 0 else None

    @property
    def cpu_percent_of_machine(self) -> float | None:
        pct = self.cpu_percent
        return None if pct is None else pct / max(1, self.cores)

    @property
    def peak_rss_mib(self) -> float | None:
        return None if self.peak_rss_bytes is None else self.peak_rss_bytes / 2**20

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec.update(cpu_percent=self.cpu_percent, cpu_percent_of_machine=self.cpu_percent_of_machine,
                   peak_rss_mib=self.peak_rss_mib)
        return rec


class PassMeter:
    """``with PassMeter(usage): ...`` adds one pass's wall time, CPU time and peak RSS to ``usage``."""

    def __init__(self, usage: ResourceUsage) -> None:
        self.usage = usage
        self._start: ResourceMark | None = None
        self._scope = "process"

    def __enter__(self) -> PassMeter:
        self._scope = "pass" if reset_peak_rss() else "process"
        self._start = mark()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._start is not None
        self.usage.add(self._start, mark(), peak_rss_bytes(), self._scope)
