"""The LIBSVM C library through ctypes: dense rows as node arrays, training and prediction calls, the
C runtime's ``srand`` and OpenMP hooks, and model text in and out of the C loader and saver.

Rows are marshalled into ONE numpy buffer of ``svm_node`` structs (zeros dropped, index -1 ends a row),
so a matrix crosses into C without a Python loop per value. ``-b 1`` fits Platt scaling on an internal
random 5-fold split that calls the C library's ``rand()``; training seeds it with ``srand(seed)`` (on
the same C runtime LIBSVM links) under a lock, so the same data and seed give a byte-identical model
file, in one process or across processes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.errors import SVMModelError

__all__ = ["NodeRows", "load_from_bytes", "node_rows", "predict_labels", "predict_probability", "save_to_bytes",
           "set_libsvm_threads", "train_model"]

log = logging.getLogger(__name__)


def _import_libsvm() -> Any:
    """LIBSVM's ``svm`` module, without the scipy it imports when it can.

    libsvm-official imports ``scipy.sparse`` at import time for sparse inputs, which edge-mmer never
    passes (rows go in as node arrays). On a device that is about 20 MiB of resident memory and most of
    a second at every start for nothing, so its ``import scipy`` is made to fail (it is guarded there)
    unless scipy is loaded already; nothing else sees the difference.
    """
    if "scipy" in sys.modules:
        from libsvm import svm
        return svm
    sys.modules["scipy"] = None  # type: ignore[assignment]  # None in sys.modules: that import raises ImportError
    try:
        from libsvm import svm
    finally:
        sys.modules.pop("scipy", None)  # our None: with it there, nothing could import the real scipy
    return svm


_svm = _import_libsvm()

_NODE_DTYPE = np.dtype([("index", np.int32), ("value", np.float64)], align=True)
if _NODE_DTYPE.itemsize != ctypes.sizeof(_svm.svm_node):  # pragma: no cover - exotic ABI
    raise ImportError(
        f"unexpected libsvm svm_node size {ctypes.sizeof(_svm.svm_node)} (expected {_NODE_DTYPE.itemsize})"
    )

_TRAIN_LOCK = threading.Lock()


@dataclass
class NodeRows:
    """Rows of a dense matrix as LIBSVM sparse node arrays in ONE numpy buffer (zeros dropped)."""

    nodes: np.ndarray
    addrs: np.ndarray  # uintp address of each row's first node

    def pointers(self, idx: np.ndarray | None = None) -> ctypes.Array[Any]:
        addrs = self.addrs if idx is None else self.addrs[idx]
        ptrs = (ctypes.POINTER(_svm.svm_node) * len(addrs))()
        if len(addrs):
            view = np.ctypeslib.as_array(ctypes.cast(ptrs, ctypes.POINTER(ctypes.c_size_t)), (len(addrs),))
            view[:] = addrs
        array: ctypes.Array[Any] = ptrs
        return array


def node_rows(x: np.ndarray) -> NodeRows:
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = x.shape[0]
    mask = x != 0
    nnz = mask.sum(axis=1).astype(np.int64)
    counts = nnz + 1  # + terminator (index -1)
    starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    nz_starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        np.cumsum(nnz[:-1], out=nz_starts[1:])
    nodes = np.zeros(int(counts.sum()), dtype=_NODE_DTYPE)
    nodes["index"] = -1
    rows, cols = np.nonzero(mask)
    pos = starts[rows] + (np.arange(rows.size, dtype=np.int64) - nz_starts[rows])
    nodes["index"][pos] = cols + 1
    nodes["value"][pos] = x[rows, cols]
    addrs = (nodes.ctypes.data + starts * _NODE_DTYPE.itemsize).astype(np.uintp)
    return NodeRows(nodes, addrs)


def _problem(y: np.ndarray, rows: NodeRows, idx: np.ndarray | None = None) -> Any:
    labels = np.ascontiguousarray(y if idx is None else y[idx], dtype=np.float64)
    prob = _svm.svm_problem.__new__(_svm.svm_problem)  # zeroed struct; we fill it without Python loops
    ybuf = (ctypes.c_double * labels.size)()
    if labels.size:
        np.ctypeslib.as_array(ybuf)[:] = labels
    prob.l = int(labels.size)
    prob.y = ybuf
    prob.x = rows.pointers(idx)
    prob.keepalive = (rows, ybuf)  # the trained model's SVs point into rows.nodes
    return prob


def _srand_function() -> Callable[[int], None] | None:
    """``srand`` of the C runtime LIBSVM's ``rand()`` uses (found through LIBSVM's own handle)."""
    for lib in (_svm.libsvm, ctypes.CDLL(None) if os.name != "nt" else None):
        if lib is None:
            continue
        try:
            fn = lib.srand
        except AttributeError:
            continue
        fn.argtypes = [ctypes.c_uint]
        fn.restype = None
        return fn
    log.warning("libsvm: could not find the C runtime's srand(); probability models may not be reproducible")
    return None


_SRAND = _srand_function()


def _omp_function() -> Callable[[int], None] | None:
    try:
        fn = _svm.libsvm.omp_set_num_threads  # present when the wheel is built with OpenMP
    except AttributeError:
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = None
    typed: Callable[[int], None] = fn
    return typed


_OMP_SET_NUM_THREADS = _omp_function()
_omp_threads = 1


def set_libsvm_threads(n: int) -> None:
    """OpenMP threads LIBSVM may use inside one call (default 1).

    The pip wheel parallelises kernel rows with OpenMP. Each training or prediction call is small,
    and on a busy CPU (a robot running camera, audio and network threads; a shared build machine)
    spinning OpenMP workers made training ~15x slower in our measurements, so the default is one
    thread. The setting applies to every later call, from any thread.
    """
    global _omp_threads
    if n < 1:
        raise ValueError(f"libsvm threads must be >= 1, got {n}")
    _omp_threads = int(n)


def _limit_threads() -> None:
    # omp_set_num_threads sets the calling thread's ICV only, so it is applied on every call.
    if _OMP_SET_NUM_THREADS is not None:
        _OMP_SET_NUM_THREADS(_omp_threads)


def train_model(
    y: np.ndarray,
    rows: NodeRows,
    c: float,
    gamma: float,
    *,
    probability: bool,
    seed: int,
    idx: np.ndarray | None = None,
) -> Any:
    """``svm_train`` of an RBF C-SVC on ``rows[idx]`` (all rows when None), the C ``rand()`` seeded."""
    prob = _problem(y, rows, idx)
    param = _svm.svm_parameter(f"-s 0 -t 2 -c {c!r} -g {gamma!r} -b {int(probability)} -q")
    err = _svm.libsvm.svm_check_parameter(prob, param)
    if err:
        raise ValueError(f"libsvm rejected the parameters (C={c}, gamma={gamma}): {err.decode(errors='replace')}")
    with _TRAIN_LOCK:
        _limit_threads()
        if _SRAND is not None:
            _SRAND(seed & 0xFFFFFFFF)
        ptr = _svm.libsvm.svm_train(prob, param)
    model = _svm.toPyModel(ptr)
    model.keepalive = (prob, param)
    return model


def predict_labels(model: Any, rows: NodeRows, idx: np.ndarray) -> np.ndarray:
    ptrs = rows.pointers(idx)
    fn = _svm.libsvm.svm_predict
    _limit_threads()
    return np.fromiter((fn(model, ptrs[i]) for i in range(len(idx))), dtype=np.float64, count=len(idx))


def predict_probability(model: Any, rows: NodeRows, n_labels: int) -> np.ndarray:
    """(N, n_labels) probabilities in the model's internal label order."""
    ptrs = rows.pointers()
    n = len(rows.addrs)
    buf = (ctypes.c_double * n_labels)()
    view = np.ctypeslib.as_array(buf)
    raw = np.empty((n, n_labels), dtype=np.float64)
    fn = _svm.libsvm.svm_predict_probability
    _limit_threads()
    for i in range(n):
        fn(model, ptrs[i], buf)
        raw[i] = view
    return raw


def save_to_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="edge-mmer-svm-") as tmp:
        path = Path(tmp) / "model.txt"
        if _svm.libsvm.svm_save_model(os.fsencode(path), model) != 0:
            raise OSError("libsvm: svm_save_model failed")
        return path.read_bytes()


def load_from_bytes(data: bytes, source: str) -> Any:
    """LIBSVM's C loader reads a path: an in-memory file (Linux memfd) when possible, so loading
    needs no disk space; else a temporary file. A failure to write it is a clear SVMModelError."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None and Path("/proc/self/fd").is_dir():
        fd = memfd("edge-mmer-svm")
        try:
            view = memoryview(data)
            while view:  # a short write (a file-size limit) must never leave LIBSVM a truncated model
                view = view[os.write(fd, view):]
            ptr = _svm.libsvm.svm_load_model(os.fsencode(f"/proc/self/fd/{fd}"))
        except OSError as exc:
            raise SVMModelError(f"{source}: cannot hold a copy of the model for LIBSVM: {exc}") from exc
        finally:
            os.close(fd)
    else:
        try:
            with tempfile.TemporaryDirectory(prefix="edge-mmer-svm-") as tmp:
                path = Path(tmp) / "model.txt"
                path.write_bytes(data)
                ptr = _svm.libsvm.svm_load_model(os.fsencode(path))
        except OSError as exc:
            raise SVMModelError(f"{source}: cannot write a temporary copy for LIBSVM in "
                                f"{tempfile.gettempdir()}: {exc}") from exc
    if not ptr:
        raise SVMModelError(f"{source}: LIBSVM could not load the model file")
    return _svm.toPyModel(ptr)
