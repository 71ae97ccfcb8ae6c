"""What a TensorRT plan is tied to: TensorRT version, GPU model, compute capability, Jetson L4T release.

A serialized plan runs only where it was built (same TensorRT version, same GPU model); elsewhere
``deserialize_cuda_engine`` returns None or worse. The builder (convert) records :class:`DeviceFacts`
beside each plan in the manifest and the runtime compares them with :func:`plan_compatibility` before
loading one: these facts are part of the bundle contract, so they live with the bundle, torch-free.

Every probe is optional: on a machine without TensorRT, pycuda / cuda-python or
``/etc/nv_tegra_release`` the field is None and nothing raises.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TEGRA_RELEASE_PATH = Path("/etc/nv_tegra_release")
DEVICE_TREE_MODEL_PATH = Path("/proc/device-tree/model")

# L4T release -> JetPack release (NVIDIA's JetPack archive). A hint only: L4T is what plans depend on.
_JETPACK_BY_L4T: dict[str, str] = {
    "35.1.0": "5.0.2",
    "35.2.1": "5.1",
    "35.3.1": "5.1.1",
    "35.4.1": "5.1.2",
    "35.5.0": "5.1.3",
    "35.6.0": "5.1.4",
    "36.2.0": "6.0 DP",
    "36.3.0": "6.0",
    "36.4.0": "6.1",
    "36.4.3": "6.2",
    "36.4.4": "6.2.1",
}

_TEGRA_RE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)\.(\d+)")


@dataclass(frozen=True)
class DeviceFacts:
    """The facts a plan is tied to; None where this machine cannot tell (or has no such thing)."""

    tensorrt_version: str | None
    gpu_name: str | None
    compute_capability: str | None  # "8.7"
    l4t_release: str | None  # "36.4.3" on Jetson, None elsewhere
    jetpack_hint: str | None  # "6.2", from the L4T release
    cuda_version: str | None = None  # CUDA runtime, "12.6"
    # Which module exactly: AGX Orin, Orin NX and Orin Nano all report GPU "Orin", 8.7
    device_model: str | None = None  # /proc/device-tree/model, "NVIDIA Jetson AGX Orin Developer Kit"
    sm_count: int | None = None  # multiprocessors: 16 on AGX Orin, 8 on Orin NX 16GB, 4-8 on Orin Nano
    dla_cores: int | None = None  # 2 on AGX Orin / Orin NX 16GB, 0 on Orin Nano; None where not probed

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DeviceFacts:
        """The facts recorded beside a plan (extra keys ignored; an absent or non-string value is None)."""

        def text(key: str) -> str | None:
            value = record.get(key)
            return value if isinstance(value, str) else None

        def number(key: str) -> int | None:
            value = record.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return cls(tensorrt_version=text("tensorrt_version"), gpu_name=text("gpu_name"),
                   compute_capability=text("compute_capability"), l4t_release=text("l4t_release"),
                   jetpack_hint=text("jetpack_hint"), cuda_version=text("cuda_version"),
                   device_model=text("device_model"), sm_count=number("sm_count"), dla_cores=number("dla_cores"))


def read_l4t_release(text: str) -> str | None:
    """``# R36 (release), REVISION: 4.3, GCID: ...`` (``/etc/nv_tegra_release``) -> ``"36.4.3"``; None if absent."""
    match = _TEGRA_RE.search(text)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return f"{int(major)}.{int(minor)}.{int(patch)}"


def jetpack_hint(l4t_release: str | None) -> str | None:
    """The JetPack release that ships an L4T release (e.g. 36.4.3 -> "6.2"); None if unknown."""
    return None if l4t_release is None else _JETPACK_BY_L4T.get(l4t_release)


def _probe_tensorrt() -> str | None:
    try:
        import tensorrt as trt  # optional, heavy
    except Exception as exc:  # ImportError, or a broken install (missing libnvinfer)
        log.debug("TensorRT not importable: %s", exc)
        return None
    return str(getattr(trt, "__version__", None) or "") or None


GpuProbe = tuple[str, str, str | None, int | None]
"""GPU name, compute capability, CUDA version, multiprocessor count."""


def _probe_gpu_pycuda(device: int) -> GpuProbe:
    import pycuda.driver as cuda  # optional

    cuda.init()
    dev = cuda.Device(device)
    major, minor = dev.compute_capability()
    version = cuda.get_version()  # the CUDA version pycuda was built against
    sms: int | None = None
    with contextlib.suppress(Exception):
        sms = int(dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT))
    return str(dev.name()), f"{major}.{minor}", ".".join(str(v) for v in version[:2]), sms


def _probe_gpu_cuda_python(device: int) -> GpuProbe:
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # older cuda-python

    err, prop = cudart.cudaGetDeviceProperties(device)
    if int(err) != 0:
        raise RuntimeError(f"cudaGetDeviceProperties({device}) failed: {err}")
    name = prop.name
    if isinstance(name, bytes):
        name = name.split(b"\x00", 1)[0].decode("utf-8", "replace")
    err, version = cudart.cudaRuntimeGetVersion()
    cuda_version = f"{int(version) // 1000}.{int(version) % 1000 // 10}" if int(err) == 0 else None
    sms = getattr(prop, "multiProcessorCount", None)
    return str(name), f"{prop.major}.{prop.minor}", cuda_version, None if sms is None else int(sms)


def _probe_gpu(device: int) -> tuple[str | None, str | None, str | None, int | None]:
    for probe in (_probe_gpu_pycuda, _probe_gpu_cuda_python):
        try:
            return probe(device)
        except Exception as exc:  # not installed, no driver, no GPU: try the next one
            log.debug("GPU probe %s failed: %s", probe.__name__, exc)
    return None, None, None, None


def read_device_model(path: Path = DEVICE_TREE_MODEL_PATH) -> str | None:
    """``/proc/device-tree/model`` without its trailing NUL (a Jetson's module and carrier); None if absent."""
    try:
        text = path.read_bytes().split(b"\x00", 1)[0].decode("utf-8", "replace").strip()
    except OSError:
        return None
    return text or None


def probe_device_facts(device: int = 0, tegra_release_path: Path = TEGRA_RELEASE_PATH, *,
                       device_model_path: Path = DEVICE_TREE_MODEL_PATH, dla_cores: int | None = None) -> DeviceFacts:
    """The facts of this machine; never raises for a missing TensorRT, CUDA binding or GPU.

    ``dla_cores`` is what TensorRT reports (``num_DLA_cores`` of a builder or runtime): the caller that
    holds TensorRT passes it, since making a TensorRT runtime here would install a second logger."""
    l4t: str | None = None
    with contextlib.suppress(OSError):  # no such file: not a Jetson
        l4t = read_l4t_release(tegra_release_path.read_text(encoding="utf-8", errors="replace"))
    gpu_name, capability, cuda_version, sms = _probe_gpu(device)
    return DeviceFacts(
        tensorrt_version=_probe_tensorrt(),
        gpu_name=gpu_name,
        compute_capability=capability,
        l4t_release=l4t,
        jetpack_hint=jetpack_hint(l4t),
        cuda_version=cuda_version,
        device_model=read_device_model(device_model_path),
        sm_count=sms,
        dla_cores=dla_cores,
    )


_COMPARED = (
    ("tensorrt_version", "TensorRT version"),
    ("gpu_name", "GPU name"),
    ("compute_capability", "compute capability"),
    ("l4t_release", "L4T release"),
)


_MODULE = (
    ("device_model", "device model"),
    ("sm_count", "GPU multiprocessors"),
)


def _module_problems(recorded: Mapping[str, Any], current: DeviceFacts) -> list[str]:
    """The exact module: device-tree model and SM count when the plan recorded them (plans recorded
    before these facts existed are judged on the others), and enough DLA cores for a DLA plan."""
    problems: list[str] = []
    for key, label in _MODULE:
        want, have = recorded.get(key), getattr(current, key)
        if want is None:
            continue
        if have is None:
            problems.append(f"{label}: plan built on {want}, unknown on this device")
        elif str(want) != str(have):
            problems.append(f"{label}: plan built on {want}, this device has {have}")
    dla = recorded.get("dla")
    core = dla.get("core") if isinstance(dla, Mapping) else None
    if isinstance(core, int):
        have_dla = current.dla_cores
        if have_dla is None:
            problems.append(f"DLA cores: the plan runs on DLA core {core}, unknown on this device")
        elif core >= have_dla:
            problems.append(f"DLA cores: the plan runs on DLA core {core}, this device has {have_dla} DLA core(s)")
    return problems


def plan_compatibility(recorded: Mapping[str, Any], current: DeviceFacts) -> list[str]:
    """Why a plan built with ``recorded`` facts cannot run here; an empty list means it can.

    TensorRT version, GPU name and compute capability must be recorded and equal; a value this
    machine cannot probe counts as a mismatch (a plan is refused rather than trusted). The L4T
    release must be equal, None on both sides (desktop) included. The module must be the same one:
    the device-tree model and the SM count (AGX Orin, Orin NX and Orin Nano are all "Orin", 8.7), and
    a DLA plan's core must exist here.
    """
    problems: list[str] = []
    for key, label in _COMPARED:
        want = recorded.get(key)
        have = getattr(current, key)
        if key == "l4t_release":
            if want != have:
                built_on, here = want or "a non-Jetson machine", have or "not a Jetson"
                problems.append(f"{label}: plan built on {built_on}, this device is {here}")
            continue
        if want is None:
            problems.append(f"{label}: not recorded with the plan")
        elif have is None:
            problems.append(f"{label}: plan built with {want}, unknown on this device")
        elif str(want) != str(have):
            problems.append(f"{label}: plan built with {want}, this device has {have}")
    return problems + _module_problems(recorded, current)
