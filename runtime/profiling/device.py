"""The facts recorded with every profile: which machine, which libraries, which clocks.

Everywhere: OS, CPU model, cores (and those this process may use), memory, the cpufreq governor,
Python, numpy / OpenCV / ONNX Runtime (version, available providers) / TensorRT versions, and the CUDA
GPU when one is visible (:func:`edge_mmer.bundle.plans.probe_device_facts`, torch-free).

On a Jetson (``/etc/nv_tegra_release`` present) also: the L4T release and JetPack it implies, the board
model, the nvpmodel power mode, whether ``jetson_clocks`` pinned the clocks (from ``jetson_clocks
--show`` when it may run, else from the cpufreq / GPU devfreq ranges in sysfs), GPU / EMC clocks,
temperatures and power from tegrastats (sampled during the run by the caller) or jtop. Clocks that are
not pinned give a warning: latency then depends on DVFS ramp-up and is not repeatable.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import os
import platform
from pathlib import Path
from typing import Any

from edge_mmer.bundle.plans import TEGRA_RELEASE_PATH, jetpack_hint, probe_device_facts, read_l4t_release
from edge_mmer.provenance import version as _version

from . import jetson
from .resources import usable_cores

log = logging.getLogger(__name__)

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")

PIN_CLOCKS_HINT = ("run `sudo jetson_clocks` before profiling (and `sudo jetson_clocks --restore` after, if you "
                   "saved the settings with `sudo jetson_clocks --store`)")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """``model name`` (x86) or the ``Model`` / ``Hardware`` line (ARM) of /proc/cpuinfo, else platform's."""
    with contextlib.suppress(OSError):
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() not in fields:
                fields[key.strip()] = value.strip()
        for key in ("model name", "Model", "Hardware", "cpu model"):
            if fields.get(key):
                return fields[key]
    return platform.processor() or None


def _mem_total_mib() -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024
    return None


def library_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "edge_mmer": _version("edge-mmer"),
        "numpy": _version("numpy"),
        "opencv": _version("opencv-python-headless") or _version("opencv-python"),
        "onnxruntime": None,
        "onnxruntime_providers": [],
        "tensorrt": None,
    }
    try:
        import onnxruntime as ort

        facts["onnxruntime"] = str(ort.__version__)
        facts["onnxruntime_providers"] = list(ort.get_available_providers())
    except Exception as exc:  # not installed, or a broken GPU build
        log.debug("onnxruntime: %s", exc)
    if importlib.util.find_spec("tensorrt") is not None:  # JetPack's python3-libnvinfer or NVIDIA's wheel
        try:
            import tensorrt as trt

            facts["tensorrt"] = str(trt.__version__)
        except Exception as exc:  # libnvinfer missing
            facts["tensorrt"] = f"not importable: {exc}"
    return facts


def host_facts() -> dict[str, Any]:
    sysfs = jetson.read_sysfs_clocks()
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_mib": _mem_total_mib(),
        "cpu_governors": sorted(set(sysfs.cpu_governors)),
    }


def gpu_facts() -> dict[str, Any]:
    try:  # every probe is optional
        return probe_device_facts().to_record()
    except Exception as exc:  # never let a probe stop a profile
        return {"error": str(exc)}


def is_jetson(tegra_release: Path = TEGRA_RELEASE_PATH) -> bool:
    return tegra_release.is_file()


def jetson_facts(tegra_release: Path = TEGRA_RELEASE_PATH, probe_tools: bool = True) -> dict[str, Any]:
    """L4T, board, nvpmodel, jetson_clocks, sysfs clocks; ``warnings`` lists what makes timings unreliable."""
    facts: dict[str, Any] = {"notes": [], "warnings": []}
    l4t = None
    with contextlib.suppress(OSError):
        l4t = read_l4t_release(tegra_release.read_text(errors="replace"))
    facts["l4t_release"] = l4t
    facts["jetpack_hint"] = jetpack_hint(l4t)
    with contextlib.suppress(OSError):
        facts["model"] = DEVICE_TREE_MODEL.read_text(errors="replace").strip("\x00\n ")
    if probe_tools:
        nvp, note = jetson.probe_nvpmodel()
        facts["nvpmodel"] = None if nvp is None else {"mode": nvp.mode, "id": nvp.mode_id}
        if note:
            facts["notes"].append(note)
        jc, note = jetson.probe_jetson_clocks()
        facts["jetson_clocks"] = None if jc is None else jc.to_record()
        if note:
            facts["notes"].append(note)
    else:
        facts["nvpmodel"] = facts["jetson_clocks"] = None
    sysfs = jetson.read_sysfs_clocks()
    facts["sysfs_clocks"] = sysfs.to_record()
    pinned = clocks_pinned(facts)
    facts["clocks_pinned"] = pinned
    if pinned is False:
        facts["warnings"].append("clocks are not pinned (jetson_clocks is off): latency depends on DVFS and is not "
                                 "repeatable; " + PIN_CLOCKS_HINT)
    elif pinned is None:
        facts["warnings"].append("could not tell whether clocks are pinned; " + PIN_CLOCKS_HINT)
    return facts


def clocks_pinned(facts: dict[str, Any]) -> bool | None:
    """From ``jetson_clocks --show`` when it ran, else from the sysfs DVFS ranges; None when neither is known."""
    jc = facts.get("jetson_clocks")
    if isinstance(jc, dict) and "pinned" in jc:
        return bool(jc["pinned"])
    sysfs = facts.get("sysfs_clocks")
    if isinstance(sysfs, dict):
        value = sysfs.get("pinned")
        return None if value is None else bool(value)
    return None


def collect_device_facts(probe_tools: bool = True) -> dict[str, Any]:
    """Everything above; ``warnings`` (top level) gathers what the reader of a profile must know."""
    facts: dict[str, Any] = {"host": host_facts(), "libraries": library_facts(), "gpu": gpu_facts(),
                             "jetson": None, "warnings": []}
    if is_jetson():
        facts["jetson"] = jetson_facts(probe_tools=probe_tools)
        facts["warnings"].extend(facts["jetson"]["warnings"])
    return facts


def attach_tegrastats(facts: dict[str, Any], sampler: jetson.TegrastatsSampler | None, started: bool) -> None:
    """Record the tegrastats samples taken during the run (or jtop's, where tegrastats is absent)."""
    j = facts.get("jetson")
    if j is None:
        return
    if sampler is not None and started and sampler.samples:
        j["tegrastats"] = {"last_sample": sampler.samples[-1].to_record(),
                           "during_run": jetson.summarise_tegrastats(sampler.samples)}
        return
    if sampler is not None and sampler.note:
        j["notes"].append(sampler.note)
    sample, note = jetson.probe_jtop()
    j["jtop"] = sample
    if note:
        j["notes"].append(note)
