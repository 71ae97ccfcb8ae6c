"""Native TensorRT runner: one serialized plan, TensorRT 10's tensor-name API, pycuda buffers.

A plan runs only on the TensorRT version and GPU it was built with: when the manifest's build facts
are given, :meth:`TensorRTRunner.activate` compares them with this device
(:func:`edge_mmer.bundle.plans.plan_compatibility`) and refuses a plan built elsewhere,
naming the facts that differ, before TensorRT sees it.

The runner uses the CUDA primary context of its device, retained once per process
(:mod:`.trt_process`) and pushed around every call, so any thread may call :meth:`infer`; calls,
activation and release are serialized. It has one stream, and per-tensor page-locked host + device
buffers that grow when a dynamic input (the speech encoder's ``time``, the face encoder's ``batch``)
needs more room. The CUDA buffer code is :class:`_Buffer` and nothing else, so another binding
(cuda-python) could serve.
``tensorrt`` and ``pycuda`` are imported only in :meth:`_activate`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from edge_mmer.bundle.plans import plan_compatibility, probe_device_facts

from .base import Runner, RunnerError, TensorSpec
from .trt_process import dla_core_count, primary_context, pushed, trt_logger

log = logging.getLogger(__name__)

INSTALL_HINT = ("TensorRT comes with JetPack (python3-libnvinfer) or as NVIDIA's tensorrt wheel, pycuda with "
                "pip install edge-mmer[tensorrt]")


def import_tensorrt() -> tuple[Any, Any]:
    """(tensorrt, pycuda.driver), or RunnerError naming what is missing and how to get it."""
    try:
        import tensorrt as trt
    except Exception as exc:  # ImportError, or a broken install (libnvinfer missing)
        raise RunnerError(f"the Python module 'tensorrt' cannot be imported ({exc}): {INSTALL_HINT}") from exc
    try:
        import pycuda.driver as cuda
    except Exception as exc:
        raise RunnerError(f"the Python module 'pycuda' cannot be imported ({exc}): {INSTALL_HINT}") from exc
    return trt, cuda


class _Buffer:
    """One tensor's page-locked host array and device allocation; grows, never shrinks."""

    def __init__(self, cuda: Any, dtype: np.dtype) -> None:
        self.cuda = cuda
        self.dtype = dtype
        self.capacity = 0  # elements
        self.host: Any = None
        self.device: Any = None

    def reserve(self, n: int) -> bool:
        """Room for ``n`` elements; True when the device address changed."""
        if n <= self.capacity:
            return False
        self.free()
        self.capacity = max(n, 1)
        self.host = self.cuda.pagelocked_empty(self.capacity, self.dtype)
        self.device = self.cuda.mem_alloc(self.capacity * self.dtype.itemsize)
        return True

    @property
    def address(self) -> int:
        return int(self.device)

    def free(self) -> None:
        if self.device is not None:
            self.device.free()
        self.host = self.device = None
        self.capacity = 0


class TensorRTRunner(Runner):
    """One TensorRT plan on one GPU.

    ``plan_bytes`` are the serialized engine (read through the bundle, sha256 verified);
    ``build_facts`` the manifest's record of the build (``tensorrt-<precision>`` artifact): when
    given, a plan built for another TensorRT version, GPU or L4T release is refused at activation.
    """

    backend = "tensorrt"

    def __init__(self, network: str, plan_bytes: bytes, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                 device: int = 0, build_facts: Mapping[str, Any] | None = None) -> None:
        super().__init__(network, inputs, outputs)
        if not plan_bytes:
            raise RunnerError(f"{network}: empty TensorRT plan")
        self.plan_bytes = plan_bytes
        self.device = device
        self.build_facts = dict(build_facts) if build_facts is not None else None
        self._cuda: Any = None
        self._ctx: Any = None
        self._logger: Any = None
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._stream: Any = None
        self._buffers: dict[str, _Buffer] = {}
        self._lock = threading.Lock()  # one stream, one set of buffers: one call at a time
        self._version = "?"
        self._gpu = f"GPU {device}"

    @property
    def description(self) -> str:
        precision = (self.build_facts or {}).get("precision", "?")
        dla = (self.build_facts or {}).get("dla")
        where = f"DLA core {dla['core']} + {self._gpu}" if isinstance(dla, Mapping) else self._gpu
        return f"tensorrt {self._version} ({precision}, {where})"

    @contextlib.contextmanager
    def _current(self) -> Iterator[None]:
        with pushed(self._cuda, self._ctx):
            yield

    def shape_bounds(self) -> dict[str, tuple[list[int | None], list[int | None]]] | None:
        """The recorded optimization profile's (min, max) shape per input (see :class:`~.fit.ShapeFit`)."""
        record = (self.build_facts or {}).get("profiles")
        if not isinstance(record, Mapping) or not record:
            return None
        return {str(name): (list(r["min"]), list(r["max"])) for name, r in record.items()}

    def check_device(self) -> None:
        """RunnerError when the recorded build facts do not match this device."""
        if self.build_facts is None:
            log.warning("%s: no build facts recorded with this plan: its TensorRT version and GPU are not checked",
                        self.network)
            return
        dla = self.build_facts.get("dla")
        facts = probe_device_facts(self.device, dla_cores=dla_core_count() if isinstance(dla, Mapping) else None)
        problems = plan_compatibility(self.build_facts, facts)
        if problems:
            raise RunnerError(f"{self.network}: this TensorRT plan was built for another device: "
                              f"{'; '.join(problems)}. "
                              "Rebuild it here: edge-mmer convert --bundle B --tensorrt --overwrite-artifacts")

    def _activate(self) -> None:
        self.check_device()  # first: a plan built elsewhere is refused with the facts that differ
        trt, cuda = import_tensorrt()
        try:
            cuda.init()
            dev = cuda.Device(self.device)
            self._gpu = str(dev.name())
            self._ctx = primary_context(cuda, self.device)  # once per process, shared with ONNX Runtime
        except Exception as exc:
            raise RunnerError(f"{self.network}: no usable CUDA device {self.device}: {exc}") from exc
        self._cuda = cuda
        self._version = str(getattr(trt, "__version__", "?"))
        try:
            with self._current():
                self._load(trt, cuda)
        except BaseException:
            self._release()
            raise

    def _load(self, trt: Any, cuda: Any) -> None:
        self._logger = trt_logger(trt)  # the process's one logger (TensorRT keeps only the first)
        self._runtime = trt.Runtime(self._logger)
        dla = (self.build_facts or {}).get("dla")
        if isinstance(dla, Mapping) and dla.get("core") is not None:
            self._runtime.DLA_core = int(dla["core"])  # before deserializing (reference/tensorrt.md)
        self._engine = self._runtime.deserialize_cuda_engine(self.plan_bytes)
        if self._engine is None:
            raise RunnerError(f"{self.network}: TensorRT {self._version} could not deserialize the plan (built with "
                              f"another TensorRT version or GPU?); rebuild it on this device")
        modes: dict[str, str] = {}
        dtypes: dict[str, np.dtype] = {}
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            modes[name] = "input" if is_input else "output"
            dtypes[name] = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
        want_in, want_out = {s.name for s in self.inputs}, {s.name for s in self.outputs}
        have_in = {n for n, m in modes.items() if m == "input"}
        have_out = {n for n, m in modes.items() if m == "output"}
        if have_in != want_in or not want_out <= have_out:
            raise RunnerError(f"{self.network}: "
                              f"the plan's tensors {sorted(have_in)} -> {sorted(have_out)} do not match "
                              f"the manifest's {sorted(want_in)} -> {sorted(want_out)}")
        for spec in [*self.inputs, *self.outputs]:
            if dtypes[spec.name] != np.dtype(spec.dtype):
                raise RunnerError(f"{self.network}: plan tensor '{spec.name}' is {dtypes[spec.name]}, the manifest "
                                  f"says {spec.dtype}")
        self._outputs_all = sorted(have_out)
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise RunnerError(f"{self.network}: TensorRT could not create an execution context (GPU memory?)")
        self._stream = cuda.Stream()
        self._buffers = {name: _Buffer(cuda, dtypes[name]) for name in modes}

    def _profile_text(self, name: str) -> str:
        try:
            lo, opt, hi = self._engine.get_tensor_profile_shape(name, 0)
            return f" (the plan's profile: min {list(lo)}, opt {list(opt)}, max {list(hi)})"
        except Exception:
            return ""

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = self._cuda
        with self._lock, self._current():
            for spec in self.inputs:
                arr = np.ascontiguousarray(feeds[spec.name])
                if not self._context.set_input_shape(spec.name, tuple(arr.shape)):
                    raise RunnerError(f"{self.network}: input '{spec.name}' shape {list(arr.shape)} is outside the "
                                      f"plan's optimization profile{self._profile_text(spec.name)}")
                buf = self._buffers[spec.name]
                buf.reserve(arr.size)
                host = buf.host[: arr.size]
                host[...] = arr.reshape(-1)
                cuda.memcpy_htod_async(buf.device, host, self._stream)
                self._context.set_tensor_address(spec.name, buf.address)
            shapes: dict[str, tuple[int, ...]] = {}
            for name in self._outputs_all:
                shape = tuple(int(d) for d in self._context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise RunnerError(f"{self.network}: output '{name}' has an unresolved shape {list(shape)}")
                shapes[name] = shape
                buf = self._buffers[name]
                buf.reserve(int(np.prod(shape, dtype=np.int64)))
                self._context.set_tensor_address(name, buf.address)
            if not self._context.execute_async_v3(self._stream.handle):
                raise RunnerError(f"{self.network}: TensorRT execute_async_v3 failed (see the TensorRT log)")
            wanted = [s.name for s in self.outputs]
            for name in wanted:
                n = int(np.prod(shapes[name], dtype=np.int64))
                cuda.memcpy_dtoh_async(self._buffers[name].host[:n], self._buffers[name].device, self._stream)
            self._stream.synchronize()
            return {name: self._buffers[name].host[: int(np.prod(shapes[name], dtype=np.int64))]
                    .reshape(shapes[name]).copy() for name in wanted}

    def _release(self) -> None:
        """Free the buffers and TensorRT objects under the pushed context; the primary context itself
        stays retained for the process (:mod:`.trt_process`), so nothing is left pushed or leaked."""
        if self._ctx is None:
            return
        try:
            with self._current():
                for buf in self._buffers.values():
                    buf.free()
                self._buffers = {}
                self._context = self._engine = self._runtime = self._stream = None
        finally:
            self._ctx = None

    def activate(self) -> None:
        with self._lock:  # not while another thread is inside infer()
            super().activate()

    def deactivate(self) -> None:
        with self._lock:
            super().deactivate()

    def _deactivate(self) -> None:
        self._release()
