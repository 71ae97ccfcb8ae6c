"""ONNX Runtime runner: CPU everywhere, CUDA or TensorRT execution providers where installed.

:func:`choose_providers` turns a request (``None`` / ``"auto"``, or names such as ``"tensorrt"``,
``"cuda"``, ``"cpu"``) into the provider list for one session: TensorRT EP -> CUDA EP -> CPU, only
those ``onnxruntime.get_available_providers()`` reports. The TensorRT EP gets FP16 / INT8 flags for
FP16 / Q/DQ models, explicit optimization profiles for dynamic inputs, and an engine cache under
``$XDG_CACHE_HOME/edge-mmer/trt-ep/<model sha256 prefix>/``: one folder per model, because the EP's
own cache key ignores the weights (two bundles with the same architecture would share an engine).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import Runner, RunnerError, TensorSpec

log = logging.getLogger(__name__)

TRT_EP = "TensorrtExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
AUTO_ORDER = (TRT_EP, CUDA_EP, CPU_EP)
PROVIDER_ALIASES = {"tensorrt": TRT_EP, "trt": TRT_EP, "cuda": CUDA_EP, "cpu": CPU_EP}

ProviderSpec = str | tuple[str, dict[str, Any]]
ShapeRanges = Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]]


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise RunnerError(f"onnxruntime is not installed ({exc}): pip install edge-mmer[onnx] "
                          "(on a Jetson, NVIDIA's onnxruntime-gpu wheel)") from exc
    return onnxruntime


def available_providers() -> list[str]:
    """What this onnxruntime build can run (``onnxruntime.get_available_providers()``)."""
    return list(_ort().get_available_providers())


def trt_ep_cache_root() -> Path:
    """``$XDG_CACHE_HOME/edge-mmer/trt-ep`` (``~/.cache/...`` when unset): independent of any bundle."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-mmer" / "trt-ep"


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in shape)


def tensorrt_ep_options(*, fp16: bool = False, int8: bool = False, cache_dir: Path | None = None,
                        profiles: ShapeRanges | None = None, device_id: int = 0) -> dict[str, Any]:
    """Options for ``TensorrtExecutionProvider``: precision flags, engine + timing cache, profiles."""
    opts: dict[str, Any] = {"device_id": device_id, "trt_fp16_enable": bool(fp16 or int8),
                            "trt_int8_enable": bool(int8)}
    if cache_dir is not None:
        opts.update({"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir),
                     "trt_timing_cache_enable": True})
    dynamic = {name: rng for name, rng in (profiles or {}).items() if tuple(rng[0]) != tuple(rng[2])}
    if dynamic:  # one profile covering every utterance: no engine rebuild mid-stream on a longer one
        for key, idx in (("trt_profile_min_shapes", 0), ("trt_profile_opt_shapes", 1), ("trt_profile_max_shapes", 2)):
            opts[key] = ",".join(f"{name}:{_shape_text(rng[idx])}" for name, rng in dynamic.items())
    return opts


def choose_providers(request: str | Sequence[str] | None = None, *, fp16: bool = False, int8: bool = False,
                     cache_dir: Path | None = None, profiles: ShapeRanges | None = None,
                     device_id: int = 0) -> list[ProviderSpec]:
    """The provider list for one session.

    ``None`` or ``"auto"``: TensorRT EP, CUDA EP, CPU, those that are available, in that order.
    Otherwise provider names or aliases (``"tensorrt"``, ``"cuda"``, ``"cpu"``), in the order given;
    one that this onnxruntime build lacks is an error (asked for explicitly: no silent fallback).
    CPU is appended when missing so nodes a GPU provider cannot take still run.
    """
    have = available_providers()
    if request is None or request == "auto" or (not isinstance(request, str) and list(request) == ["auto"]):
        names = [p for p in AUTO_ORDER if p in have]
    else:
        asked = [request] if isinstance(request, str) else list(request)
        names = [PROVIDER_ALIASES.get(p.lower(), p) for p in asked]
        missing = [p for p in names if p not in have]
        if missing:
            raise RunnerError(f"ONNX Runtime provider(s) {', '.join(missing)} not available in this onnxruntime "
                              f"build (available: {', '.join(have)}); for CUDA / TensorRT install onnxruntime-gpu "
                              "(on a Jetson, NVIDIA's onnxruntime-gpu wheel)")
        names = list(dict.fromkeys(names))
    if CPU_EP not in names:
        names.append(CPU_EP)
    out: list[ProviderSpec] = []
    for name in names:
        if name == TRT_EP:
            out.append((TRT_EP, tensorrt_ep_options(fp16=fp16, int8=int8, cache_dir=cache_dir, profiles=profiles,
                                                    device_id=device_id)))
        elif name == CUDA_EP:
            out.append((CUDA_EP, {"device_id": device_id}))
        else:
            out.append(name)
    return out


def provider_names(providers: Sequence[ProviderSpec]) -> list[str]:
    return [p if isinstance(p, str) else p[0] for p in providers]


class OnnxRuntimeRunner(Runner):
    """One ONNX model in one ``onnxruntime.InferenceSession``.

    ``model`` is the path or the bytes of the model (the bytes the bundle reader verified, so the
    file is not read twice); ``providers`` defaults to CPU (see :func:`choose_providers`);
    ``threads`` sets intra-op threads (0 = ONNX Runtime's default, one per core);
    ``allow_spinning=False`` lets idle intra-op threads sleep (a little latency for less idle power).
    """

    backend = "onnxruntime"

    def __init__(self, network: str, model: bytes | Path, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                 providers: Sequence[ProviderSpec] = (CPU_EP,), threads: int = 0,
                 allow_spinning: bool = True) -> None:
        super().__init__(network, inputs, outputs)
        if threads < 0:
            raise RunnerError(f"{network}: threads must be >= 0 (0 = ONNX Runtime's default), got {threads}")
        self.model = model
        self.providers = list(providers)
        self.threads = threads
        self.allow_spinning = allow_spinning
        self.session: Any = None

    @property
    def providers_used(self) -> list[str]:
        """The providers the session actually runs (empty before activation)."""
        return list(self.session.get_providers()) if self.session is not None else []

    @property
    def description(self) -> str:
        used = self.providers_used or provider_names(self.providers)
        threads = f", {self.threads} thread{'s' if self.threads > 1 else ''}" if self.threads else ""
        return f"onnxruntime ({', '.join(used)}{threads})"

    def _activate(self) -> None:
        ort = _ort()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
        if not self.allow_spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        for spec in self.providers:
            if not isinstance(spec, str) and spec[0] == TRT_EP and spec[1].get("trt_engine_cache_path"):
                Path(spec[1]["trt_engine_cache_path"]).mkdir(parents=True, exist_ok=True)
        src = self.model if isinstance(self.model, bytes) else str(self.model)
        try:
            self.session = ort.InferenceSession(src, sess_options=so, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise RunnerError(f"{self.network}: ONNX Runtime cannot load the model: {exc}") from exc
        asked, used = provider_names(self.providers), self.providers_used
        dropped = [p for p in asked if p not in used]
        if dropped:  # e.g. the TensorRT EP without libnvinfer: ONNX Runtime falls back and only logs it
            log.warning("%s: ONNX Runtime could not start %s; running on %s", self.network, ", ".join(dropped),
                        ", ".join(used))
        names_in = [i.name for i in self.session.get_inputs()]
        names_out = [o.name for o in self.session.get_outputs()]
        want_in = [s.name for s in self.inputs]
        want_out = [s.name for s in self.outputs]
        if sorted(names_in) != sorted(want_in) or not set(want_out) <= set(names_out):
            self.session = None
            raise RunnerError(f"{self.network}: the ONNX model's I/O {names_in} -> {names_out} does not match the "
                              f"manifest's {want_in} -> {want_out}")
        self._out_names = want_out

    def shape_bounds(self) -> dict[str, tuple[list[int | None], list[int | None]]] | None:
        """The model's fixed input dimensions as (min, max) bounds (None for a dynamic axis); None
        before activation or when every axis is dynamic (see :class:`~.fit.ShapeFit`)."""
        if self.session is None:
            return None
        out: dict[str, tuple[list[int | None], list[int | None]]] = {}
        for node in self.session.get_inputs():
            dims = [d if isinstance(d, int) and d > 0 else None for d in node.shape]
            out[node.name] = (dims, dims)
        return out if any(d is not None for lo, _ in out.values() for d in lo) else None

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            values = self.session.run(self._out_names, dict(feeds))
        except Exception as exc:
            shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in feeds.items())
            raise RunnerError(f"{self.network}: ONNX Runtime failed on inputs {shapes}: {exc}") from exc
        return dict(zip(self._out_names, values, strict=True))

    def _deactivate(self) -> None:
        self.session = None
