"""Jetson facts: parsers of ``nvpmodel -q`` / ``jetson_clocks --show`` / sysfs clocks and their live probes
(``tegrastats`` lives in :mod:`.tegrastats`, re-exported here).

The parsers are pure functions of the tools' text output (tested against real captures in
``tests/fixtures/jetson/``, whose sources SOURCES.md names); the probes run the tools with a timeout
and return None, with a note saying why, where a tool is absent or refuses (``jetson_clocks --show``
wants root). Nothing here raises for a missing tool: a desktop simply has no Jetson facts.

Formats (JetPack 5 / 6, and JetPack 7's extra columns):

* ``nvpmodel -q``: ``NV Power Mode: 15W`` then the mode id on its own line;
* ``jetson_clocks --show``: ``cpuN:  Online=1 Governor=.. MinFreq=.. MaxFreq=.. CurrentFreq=..`` (kHz; the
  spacing varies by release and JetPack 7.2 drops ``Online=``, see ``_JC_CPU_RE``),
  ``GPU MinFreq=.. MaxFreq=.. CurrentFreq=..`` and ``EMC ... FreqOverride=0|1`` (Hz),
  ``NV Power Mode: ..``. ``jetson_clocks`` pins every CPU and the GPU at their maximum
  (MinFreq == MaxFreq) and sets the EMC override; that is what "pinned" means here.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .tegrastats import (
    ABSENT_SENSOR_C,
    SUM_OF_RAILS,
    TOTAL_POWER_RAILS,
    CpuCore,
    PowerRail,
    TegraStats,
    TegrastatsSampler,
    parse_tegrastats,
    summarise_tegrastats,
)

__all__ = ["ABSENT_SENSOR_C", "SUM_OF_RAILS", "TOTAL_POWER_RAILS",
           "ClockRange", "CpuClock", "CpuCore", "JetsonClocks", "NvpModel",
           "PowerRail", "SysfsClocks", "TegraStats", "TegrastatsSampler", "ToolRun", "parse_jetson_clocks",
           "parse_nvpmodel", "parse_tegrastats", "probe_jetson_clocks", "probe_jtop", "probe_nvpmodel",
           "read_sysfs_clocks", "run_tool", "summarise_tegrastats"]

log = logging.getLogger(__name__)

_NVP_RE = re.compile(r"NV Power Mode:\s*(\S+)")


@dataclass(frozen=True)
class NvpModel:
    mode: str  # "MAXN", "15W", "MAXN_SUPER" ...
    mode_id: int | None


def parse_nvpmodel(text: str) -> NvpModel | None:
    """``nvpmodel -q`` output -> mode name and id (the first integer-only line after the name); None if absent."""
    m = _NVP_RE.search(text)
    if m is None:
        return None
    mode_id = None
    for line in text[m.end():].splitlines():
        s = line.strip()
        if s.isdigit():
            mode_id = int(s)
            break
    return NvpModel(mode=m.group(1), mode_id=mode_id)


# ------------------------------------------------------------------------------ jetson_clocks --show

# JetPack 6.1 / 6.2 print ``cpu0:  Online=1`` (two spaces; ``cpu10: Online=1`` with one), JetPack 7.2 drops
# ``Online=`` (the ``Online CPUs: 0-11`` line says it); older releases print one space. Whitespace is free here.
_JC_CPU_RE = re.compile(r"^cpu(\d+):\s+(?:Online=(\d)\s+)?Governor=(\S+)\s+MinFreq=(\d+)\s+MaxFreq=(\d+)"
                        r"\s+CurrentFreq=(\d+)")
_JC_ONLINE_RE = re.compile(r"^Online CPUs:\s*([\d,\-\s]*)")
_JC_GPU_RE = re.compile(r"^GPU\s+MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)")
_JC_EMC_RE = re.compile(r"^EMC\s+MinFreq=(\d+)\s+MaxFreq=(\d+)\s+CurrentFreq=(\d+)(?:\s+FreqOverride=(\d))?")
_JC_MACHINE_RE = re.compile(r"Machine:\s*(.+?)\s*$")


@dataclass(frozen=True)
class ClockRange:
    """A clock's DVFS range and current value, MHz."""

    min_mhz: float
    max_mhz: float
    current_mhz: float

    @property
    def pinned(self) -> bool:
        return self.min_mhz == self.max_mhz


@dataclass(frozen=True)
class CpuClock:
    cpu: int
    online: bool
    governor: str
    clock: ClockRange


@dataclass(frozen=True)
class JetsonClocks:
    machine: str | None = None
    cpus: tuple[CpuClock, ...] = ()
    gpu: ClockRange | None = None
    emc: ClockRange | None = None
    emc_override: bool | None = None
    power_mode: str | None = None

    @property
    def pinned(self) -> bool:
        """jetson_clocks is on: every online CPU and the GPU have MinFreq == MaxFreq.

        Offline CPUs are left out: ``sudo jetson_clocks`` in a mode that takes cores offline (AGX Orin
        MODE_30W: cpu8-11 ``Online=0``) pins the online ones only, and the offline ones keep their range.
        """
        online = [c for c in self.cpus if c.online]
        if not online and self.gpu is None:
            return False
        return all(c.clock.pinned for c in online) and (self.gpu is None or self.gpu.pinned)

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["pinned"] = self.pinned
        return rec


def _mhz(value: str, per_mhz: float) -> float:
    return round(int(value) / per_mhz, 3)


def _cpu_list(text: str) -> set[int]:
    """``0-5,8`` -> {0, 1, 2, 3, 4, 5, 8} (the kernel's cpu-list format)."""
    out: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


def parse_jetson_clocks(text: str) -> JetsonClocks:
    """``jetson_clocks --show`` output -> :class:`JetsonClocks` (CPU in kHz, GPU / EMC in Hz, all to MHz).

    Raises ValueError when the text has no cpu, GPU or EMC line.
    """
    machine = power_mode = None
    online_set: set[int] | None = None
    cpus: list[CpuClock] = []
    gpu = emc = None
    override = None
    for raw in text.splitlines():
        line = raw.strip()
        if m := _JC_CPU_RE.match(line):
            cpu = int(m.group(1))
            online = m.group(2) == "1" if m.group(2) is not None else (online_set is None or cpu in online_set)
            cpus.append(CpuClock(cpu, online, m.group(3), ClockRange(*(_mhz(m.group(i), 1e3) for i in (4, 5, 6)))))
        elif m := _JC_ONLINE_RE.match(line):
            online_set = _cpu_list(m.group(1))
        elif m := _JC_GPU_RE.match(line):
            gpu = ClockRange(*(_mhz(m.group(i), 1e6) for i in (1, 2, 3)))
        elif m := _JC_EMC_RE.match(line):
            emc = ClockRange(*(_mhz(m.group(i), 1e6) for i in (1, 2, 3)))
            override = None if m.group(4) is None else m.group(4) == "1"
        elif m := _NVP_RE.search(line):
            power_mode = m.group(1)
        elif line.startswith("SOC family") and (m := _JC_MACHINE_RE.search(line)):
            machine = m.group(1)
    if not cpus and gpu is None and emc is None:
        raise ValueError("not 'jetson_clocks --show' output (no cpuN / GPU / EMC line)")
    return JetsonClocks(machine, tuple(cpus), gpu, emc, override, power_mode)


# ------------------------------------------------------------------------------------------ sysfs


@dataclass(frozen=True)
class SysfsClocks:
    """CPU and GPU DVFS state from sysfs (readable without root, unlike ``jetson_clocks --show``)."""

    cpu_governors: tuple[str, ...] = ()
    cpus: tuple[ClockRange, ...] = ()
    gpu: ClockRange | None = None
    gpu_node: str | None = None

    @property
    def pinned(self) -> bool | None:
        if not self.cpus and self.gpu is None:
            return None
        return all(c.pinned for c in self.cpus) and (self.gpu is None or self.gpu.pinned)

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["pinned"] = self.pinned
        return rec


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_sysfs_clocks(root: Path = Path("/")) -> SysfsClocks:
    """CPU cpufreq (kHz) and the Jetson GPU's devfreq (Hz) under ``root`` (a test passes a fake tree)."""
    cpus: list[ClockRange] = []
    governors: list[str] = []
    for d in sorted(glob.glob(str(root / "sys/devices/system/cpu/cpu[0-9]*/cpufreq")),
                    key=lambda p: int(re.sub(r"\D", "", Path(p).parent.name) or 0)):
        p = Path(d)
        lo, hi = _read_int(p / "scaling_min_freq"), _read_int(p / "scaling_max_freq")
        cur = _read_int(p / "scaling_cur_freq")
        if lo is None or hi is None:
            continue
        cpus.append(ClockRange(lo / 1e3, hi / 1e3, (cur if cur is not None else lo) / 1e3))
        with contextlib.suppress(OSError):
            governors.append((p / "scaling_governor").read_text().strip())
    gpu = node = None
    for d in sorted(glob.glob(str(root / "sys/class/devfreq/*"))):
        name = Path(d).name
        if not (name.endswith(".gpu") or name.split(".")[-1] in ("ga10b", "gv11b", "gp10b", "gb10b")):
            continue
        p = Path(d)
        lo, hi, cur = _read_int(p / "min_freq"), _read_int(p / "max_freq"), _read_int(p / "cur_freq")
        if lo is not None and hi is not None:
            gpu = ClockRange(lo / 1e6, hi / 1e6, (cur if cur is not None else lo) / 1e6)
            node = name
            break
    return SysfsClocks(tuple(governors), tuple(cpus), gpu, node)


# ------------------------------------------------------------------------------------ live probes


@dataclass(frozen=True)
class ToolRun:
    """What running a tool gave: its stdout, or why there is none."""

    tool: str
    stdout: str | None
    note: str | None = None


def run_tool(argv: list[str], timeout_s: float = 5.0) -> ToolRun:
    """Run ``argv`` (no shell); a missing tool, a failure or a timeout gives ``stdout=None`` and a note."""
    exe = shutil.which(argv[0])
    if exe is None:
        return ToolRun(argv[0], None, f"{argv[0]} not found on PATH")
    try:
        proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ToolRun(argv[0], None, f"{' '.join(argv)} failed: {exc}")
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        last = lines[-1] if lines else ""
        hint = " (it needs root: sudo)" if any(w in last.lower() for w in ("root", "permission", "sudo")) else ""
        return ToolRun(argv[0], None, f"{' '.join(argv)} exited {proc.returncode}: {last}{hint}")
    return ToolRun(argv[0], proc.stdout)


def probe_nvpmodel(timeout_s: float = 5.0) -> tuple[NvpModel | None, str | None]:
    run = run_tool(["nvpmodel", "-q"], timeout_s)
    if run.stdout is None:
        return None, run.note
    parsed = parse_nvpmodel(run.stdout)
    return parsed, None if parsed else f"nvpmodel -q: no 'NV Power Mode' line in {run.stdout[:80]!r}"


def probe_jetson_clocks(timeout_s: float = 5.0) -> tuple[JetsonClocks | None, str | None]:
    run = run_tool(["jetson_clocks", "--show"], timeout_s)
    if run.stdout is None:
        return None, run.note
    try:
        return parse_jetson_clocks(run.stdout), None
    except ValueError as exc:
        return None, f"jetson_clocks --show: {exc}"


def probe_jtop() -> tuple[dict[str, Any] | None, str | None]:
    """One ``jtop`` stats sample (jetson-stats' service) where tegrastats is absent; None and a note otherwise."""
    try:
        from jtop import jtop  # optional: pip install jetson-stats (needs its systemd service)
    except Exception as exc:
        return None, f"jtop not available ({exc.__class__.__name__})"
    try:
        with jtop(interval=0.5) as jetson:
            if not jetson.ok():  # waits for the service's next sample
                return None, "jtop gave no sample"
            stats = dict(jetson.stats)
    except Exception as exc:
        return None, f"jtop failed: {exc}"
    return {str(k): (v if isinstance(v, (int, float, str, type(None))) else str(v)) for k, v in stats.items()}, None
