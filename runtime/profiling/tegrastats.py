"""``tegrastats`` on a Jetson: its lines parsed, summarised over a run, and sampled in the background.

The parser is a pure function of the tool's text output (tested against real captures in
``tests/fixtures/jetson/``, whose sources SOURCES.md names). The format (JetPack 5 / 6, and JetPack 7's extra columns):
``[MM-DD-YYYY HH:MM:SS] RAM 2448/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) CPU [3%@1510,off,...]
EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] ... cpu@47.5C gpu@46.9C ... VDD_IN 4238mW/4238mW
VDD_CPU_GPU_CV 480mW/480mW ...`` (frequencies in MHz; power current/average in mW; JetPack 7 prints
``cpu@52.9C/52.9C`` and three power figures, current/average/maximum; Thor prints no ``EMC_FREQ`` /
``GR3D_FREQ``; a temperature of -256 C is an absent sensor).
:class:`TegrastatsSampler` runs the tool during a profiling run; where it is absent it says so
(``note``) instead of raising.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ABSENT_SENSOR_C", "SUM_OF_RAILS", "TOTAL_POWER_RAILS",
           "CpuCore", "PowerRail", "TegraStats", "TegrastatsSampler",
           "parse_tegrastats", "summarise_tegrastats"]

log = logging.getLogger(__name__)

_TS_RE = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s+")
_RAM_RE = re.compile(r"\bRAM (\d+)/(\d+)MB(?: \(lfb (\d+)x(\d+)([kM])B\))?")
_SWAP_RE = re.compile(r"\bSWAP (\d+)/(\d+)MB(?: \(cached (\d+)MB\))?")
_CPU_RE = re.compile(r"\bCPU \[([^\]]*)\](?:@(\d+))?")
_CORE_RE = re.compile(r"^(\d+)%(?:@(\d+))?$")
_ENGINE_RE = r"\b{name} (?:(\d+)%)?(?:@\[?([\d,]+)\]?)?"
_EMC_RE = re.compile(_ENGINE_RE.format(name="EMC_FREQ"))
_GR3D_RE = re.compile(_ENGINE_RE.format(name="GR3D_FREQ"))
_TEMP_RE = re.compile(r"(?<![\w%])([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C(?:/-?\d+(?:\.\d+)?C)?\b")
_POWER_RE = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)mW/(\d+)mW(?:/(\d+)mW)?")
_POWER_OLD_RE = re.compile(r"\b((?:VDD|POM|VIN)_[A-Z0-9_]+) (\d+)/(\d+)\b(?!MB)")
TOTAL_POWER_RAILS = ("VDD_IN", "VIN", "POM_5V_IN")
"""The rails that measure the whole module's input, in order: ``VDD_IN`` (Orin Nano / NX), ``VIN`` (Thor's board
input), ``POM_5V_IN`` (Nano, TX2, Xavier). AGX Orin has none: its INA3221 channels are ``VDD_GPU_SOC``,
``VDD_CPU_CV`` and ``VIN_SYS_5V0`` (the *system* 5 V supply monitor, about a third of the module's draw), so its
module power is the sum of the rails printed (the rule jetson-stats uses). Thor prints ``VIN_SYS_5V0`` too, next
to ``VIN``: checking ``VIN_SYS_5V0`` first under-reported Thor 3-4x and AGX Orin 2-3x."""
SUM_OF_RAILS = "sum of rails"
ABSENT_SENSOR_C = -100.0  # tegrastats prints -256C for a sensor that is not there


@dataclass(frozen=True)
class CpuCore:
    online: bool
    load_pct: float | None = None
    freq_mhz: float | None = None


@dataclass(frozen=True)
class PowerRail:
    current_mw: float
    average_mw: float


@dataclass(frozen=True)
class TegraStats:
    """One parsed tegrastats line; a field the line lacks is None (or empty)."""

    timestamp: str | None = None
    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    swap_used_mb: int | None = None
    swap_total_mb: int | None = None
    cpus: tuple[CpuCore, ...] = ()
    emc_load_pct: float | None = None
    emc_freq_mhz: float | None = None
    gpu_load_pct: float | None = None
    gpu_freqs_mhz: tuple[float, ...] = ()  # one per GPC on Orin (``GR3D_FREQ 0%@[1300,1300]``)
    temperatures_c: dict[str, float] = field(default_factory=dict)
    power: dict[str, PowerRail] = field(default_factory=dict)

    @property
    def gpu_freq_mhz(self) -> float | None:
        return max(self.gpu_freqs_mhz) if self.gpu_freqs_mhz else None

    @property
    def total_power_rule(self) -> str | None:
        """Which rule gives :attr:`total_power_mw`: an input rail's name, :data:`SUM_OF_RAILS`, or None."""
        for rail in TOTAL_POWER_RAILS:
            if rail in self.power:
                return rail
        return SUM_OF_RAILS if self.power else None

    @property
    def total_power_mw(self) -> float | None:
        """The module's input power, current reading, by :attr:`total_power_rule` (see :data:`TOTAL_POWER_RAILS`)."""
        rule = self.total_power_rule
        if rule is None:
            return None
        if rule == SUM_OF_RAILS:
            return sum(r.current_mw for r in self.power.values())
        return self.power[rule].current_mw

    @property
    def max_temperature_c(self) -> float | None:
        return max(self.temperatures_c.values()) if self.temperatures_c else None

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["gpu_freq_mhz"] = self.gpu_freq_mhz
        rec["total_power_mw"] = self.total_power_mw
        rec["total_power_rule"] = self.total_power_rule
        return rec


def _freqs(text: str | None) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x) if text else ()


def parse_tegrastats(line: str) -> TegraStats:
    """One line of ``tegrastats`` output -> :class:`TegraStats`.

    Raises ValueError when the line has none of RAM, CPU, EMC_FREQ or GR3D_FREQ (not a tegrastats line).
    """
    m_ts = _TS_RE.match(line)
    ram, swap, cpu = _RAM_RE.search(line), _SWAP_RE.search(line), _CPU_RE.search(line)
    emc, gr3d = _EMC_RE.search(line), _GR3D_RE.search(line)
    if not (ram or cpu or emc or gr3d):
        raise ValueError(f"not a tegrastats line (no RAM, CPU, EMC_FREQ or GR3D_FREQ field): {line[:120]!r}")
    cores: list[CpuCore] = []
    if cpu:
        shared = float(cpu.group(2)) if cpu.group(2) else None  # old form: CPU [3%,2%]@1510
        for item in (x.strip() for x in cpu.group(1).split(",")):
            if not item or item == "off":
                cores.append(CpuCore(online=False))
                continue
            m = _CORE_RE.match(item)
            if m is None:
                raise ValueError(f"tegrastats: unexpected CPU core field {item!r} in {cpu.group(0)!r}")
            cores.append(CpuCore(True, float(m.group(1)), float(m.group(2)) if m.group(2) else shared))
    temps: dict[str, float] = {}
    for name, value in _TEMP_RE.findall(line):
        v = float(value)
        if v > ABSENT_SENSOR_C:
            temps[name] = v
    power: dict[str, PowerRail] = {}
    for name, cur, avg, third in _POWER_RE.findall(line):
        # JetPack 7 prints current/average/maximum: the first two are the same as before
        del third
        power[name] = PowerRail(float(cur), float(avg))
    if not power:
        for name, cur, avg in _POWER_OLD_RE.findall(line):
            power[name] = PowerRail(float(cur), float(avg))
    emc_freqs = _freqs(emc.group(2)) if emc else ()
    return TegraStats(
        timestamp=m_ts.group(1) if m_ts else None,
        ram_used_mb=int(ram.group(1)) if ram else None,
        ram_total_mb=int(ram.group(2)) if ram else None,
        swap_used_mb=int(swap.group(1)) if swap else None,
        swap_total_mb=int(swap.group(2)) if swap else None,
        cpus=tuple(cores),
        emc_load_pct=float(emc.group(1)) if emc and emc.group(1) else None,
        emc_freq_mhz=max(emc_freqs) if emc_freqs else None,
        gpu_load_pct=float(gr3d.group(1)) if gr3d and gr3d.group(1) else None,
        gpu_freqs_mhz=_freqs(gr3d.group(2)) if gr3d else (),
        temperatures_c=temps,
        power=power,
    )


def summarise_tegrastats(samples: list[TegraStats]) -> dict[str, Any]:
    """Samples taken during a run -> mean power per rail, max temperatures, GPU / EMC clock ranges."""
    if not samples:
        return {"samples": 0}
    rails = sorted({r for s in samples for r in s.power})
    sensors = sorted({t for s in samples for t in s.temperatures_c})
    gpu = [s.gpu_freq_mhz for s in samples if s.gpu_freq_mhz is not None]
    emc = [s.emc_freq_mhz for s in samples if s.emc_freq_mhz is not None]
    gpu_load = [s.gpu_load_pct for s in samples if s.gpu_load_pct is not None]
    total = [s.total_power_mw for s in samples if s.total_power_mw is not None]
    return {
        "samples": len(samples),
        "power_mw_mean": {r: sum(s.power[r].current_mw for s in samples if r in s.power)
                          / sum(1 for s in samples if r in s.power) for r in rails},
        "total_power_mw_mean": sum(total) / len(total) if total else None,
        "total_power_mw_max": max(total) if total else None,
        "total_power_rule": next((s.total_power_rule for s in samples if s.total_power_rule), None),
        "temperature_c_max": {t: max(s.temperatures_c[t] for s in samples if t in s.temperatures_c) for t in sensors},
        "gpu_freq_mhz_range": [min(gpu), max(gpu)] if gpu else None,
        "gpu_load_pct_mean": sum(gpu_load) / len(gpu_load) if gpu_load else None,
        "emc_freq_mhz_range": [min(emc), max(emc)] if emc else None,
    }


# ------------------------------------------------------------------------------------ nvpmodel -q

class TegrastatsSampler:
    """``tegrastats --interval MS`` in the background while a run goes on; :attr:`samples` are parsed lines.

    ``start()`` returns False (with :attr:`note`) where tegrastats is absent. Use as a context manager.
    """

    def __init__(self, interval_ms: int = 500) -> None:
        self.interval_ms = interval_ms
        self.samples: list[TegraStats] = []
        self.note: str | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        exe = shutil.which("tegrastats")
        if exe is None:
            self.note = "tegrastats not found on PATH"
            return False
        try:
            self._proc = subprocess.Popen([exe, "--interval", str(self.interval_ms)], stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
        except OSError as exc:
            self.note = f"tegrastats could not start: {exc}"
            return False
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()
        return True

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append(parse_tegrastats(line))
            except ValueError as exc:
                log.debug("tegrastats: %s", exc)

    def wait_for_sample(self, timeout_s: float = 3.0) -> TegraStats | None:
        deadline = time.monotonic() + timeout_s
        while not self.samples and self._proc is not None and self._proc.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return self.samples[-1] if self.samples else None

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            if self._thread is not None:
                self._thread.join(timeout=3)
            if not self.samples and self.note is None:
                self.note = "tegrastats gave no parsable line"
            self._proc = None

    def __enter__(self) -> TegrastatsSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
