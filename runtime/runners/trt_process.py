"""Process-wide TensorRT and CUDA state: one ``trt.Logger``, one retained primary context per device.

* TensorRT keeps a single global logger: a second ``trt.Runtime(other_logger)`` warns "The logger passed
  into createInferRuntime differs from one already provided" and keeps using the first, which may
  since have been freed with its runner (NVIDIA/TensorRT#1475). So every runtime and builder in the
  process gets :func:`trt_logger`, which forwards TensorRT's messages to Python ``logging``.
* pycuda's ``Context.detach()`` of a retained primary context runs ``cuDevicePrimaryCtxRelease``, which
  "does not pop the context from stack in any circumstances" (CUDA driver API), so releasing per runner
  left a context pushed on the thread, and from another thread pycuda leaks the retain. Here the primary
  context is retained once per device and kept for the life of the process (the ``pycuda.autoprimaryctx``
  pattern, minus making it current); :func:`pushed` makes it current around each call and always pops.
  The primary context is shared with ONNX Runtime's CUDA / TensorRT EPs and cudart in the same process.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["dla_core_count", "primary_context", "pushed", "trt_logger"]

log = logging.getLogger("edge_mmer.tensorrt")

_lock = threading.Lock()
_logger: Any = None
_contexts: dict[tuple[int, int], Any] = {}  # (id of the pycuda.driver module, device) -> retained context


def trt_logger(trt: Any) -> Any:
    """The process's one TensorRT logger (created on first use), forwarding to ``edge_mmer.tensorrt``."""
    global _logger
    with _lock:
        if _logger is not None and getattr(_logger, "_trt_module", None) is trt:
            return _logger
        severity = trt.ILogger.Severity
        levels = {severity.INTERNAL_ERROR: logging.CRITICAL, severity.ERROR: logging.ERROR,
                  severity.WARNING: logging.WARNING, severity.INFO: logging.INFO, severity.VERBOSE: logging.DEBUG}

        class _Logger(trt.ILogger):  # type: ignore[misc]
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self._trt_module = trt

            def log(self, sev: Any, msg: str) -> None:
                level = levels.get(sev, logging.INFO)
                if log.isEnabledFor(level):
                    log.log(level, "TensorRT: %s", msg)

        _logger = _Logger()
        return _logger


def primary_context(cuda: Any, device: int) -> Any:
    """``device``'s primary context, retained once per process and never released (see the module docstring)."""
    key = (id(cuda), int(device))
    with _lock:
        ctx = _contexts.get(key)
        if ctx is None:
            ctx = cuda.Device(int(device)).retain_primary_context()
            _contexts[key] = ctx
        return ctx


@contextlib.contextmanager
def pushed(cuda: Any, ctx: Any) -> Iterator[None]:
    """``ctx`` current on this thread for the block; popped on the way out, whatever happens inside."""
    ctx.push()
    try:
        yield
    finally:
        cuda.Context.pop()


def dla_core_count() -> int | None:
    """How many DLA cores TensorRT sees here (``IRuntime.num_DLA_cores``); None without TensorRT."""
    try:
        import tensorrt as trt

        return int(trt.Runtime(trt_logger(trt)).num_DLA_cores)
    except Exception as exc:  # not installed, no GPU, a broken install
        log.debug("DLA cores not probed: %s", exc)
        return None
