"""Jetson facts: parsers of ``tegrastats`` / ``nvpmodel -q`` / ``jetson_clocks --show`` and their live probes.

The parsers are pure functions of the tools' text output (tested against recorded output in
``tests/fixtures/jetson/``); the probes run the tools with a timeout and return None, with a note
saying why, where a tool is absent or refuses (``jetson_clocks --show`` wants root). Nothing here
raises for a missing tool: a desktop simply has no Jetson facts.

Formats (JetPack 5 / 6, and JetPack 7's extra columns):

* tegrastats: ``[MM-DD-YYYY HH:MM:SS] RAM 2448/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB)
  CPU [3%@1510,off,...] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] ... cpu@47.5C gpu@46.9C ...
  VDD_IN 4238mW/4238mW VDD_CPU_GPU_CV 480mW/480mW ...`` (frequencies in MHz; power current/average
  in mW; JetPack 7 prints ``cpu@52.9C/52.9C`` and three power figures; a temperature of -256 C is
  an absent sensor);
* ``nvpmodel -q``: ``NV Power Mode: 15W`` then the mode id on its own line;
* ``jetson_clocks --show``: ``cpuN: Online=1 Governor=.. MinFreq=.. MaxFreq=.. CurrentFreq=..`` (kHz),
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
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# -------------------------------------------------------------------------------------- tegrastats

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
TOTAL_POWER_RAILS = ("VDD_IN", "VIN_SYS_5V0", "POM_5V_IN", "VIN")
"""The rail that measures the whole module's input, by board (Orin Nano/NX, AGX Orin, older)."""
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
    def total_power_mw(self) -> float | None:
        """The module's input power (VDD_IN on Orin Nano/NX, VIN_SYS_5V0 on AGX Orin), current reading."""
        for rail in TOTAL_POWER_RAILS:
            if rail in self.power:
                return self.power[rail].current_mw
        return None

    @property
    def max_temperature_c(self) -> float | None:
        return max(self.temperatures_c.values()) if self.temperatures_c else None

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["gpu_freq_mhz"] = self.gpu_freq_mhz
        rec["total_power_mw"] = self.total_power_mw
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
        "temperature_c_max": {t: max(s.temperatures_c[t] for s in samples if t in s.temperatures_c) for t in sensors},
        "gpu_freq_mhz_range": [min(gpu), max(gpu)] if gpu else None,
        "gpu_load_pct_mean": sum(gpu_load) / len(gpu_load) if gpu_load else None,
        "emc_freq_mhz_range": [min(emc), max(emc)] if emc else None,
    }


# ------------------------------------------------------------------------------------ nvpmodel -q

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

_JC_CPU_RE = re.compile(r"^cpu(\d+): Online=(\d) Governor=(\S+) MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)")
_JC_GPU_RE = re.compile(r"^GPU MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)")
_JC_EMC_RE = re.compile(r"^EMC MinFreq=(\d+) MaxFreq=(\d+) CurrentFreq=(\d+)(?: FreqOverride=(\d))?")
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
        """jetson_clocks is on: every online CPU and the GPU have MinFreq == MaxFreq."""
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


def parse_jetson_clocks(text: str) -> JetsonClocks:
    """``jetson_clocks --show`` output -> :class:`JetsonClocks` (CPU in kHz, GPU / EMC in Hz, all to MHz).

    Raises ValueError when the text has no cpu, GPU or EMC line.
    """
    machine = power_mode = None
    cpus: list[CpuClock] = []
    gpu = emc = None
    override = None
    for raw in text.splitlines():
        line = raw.strip()
        if m := _JC_CPU_RE.match(line):
            cpus.append(CpuClock(int(m.group(1)), m.group(2) == "1", m.group(3),
                                 ClockRange(*(_mhz(m.group(i), 1e3) for i in (4, 5, 6)))))
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
