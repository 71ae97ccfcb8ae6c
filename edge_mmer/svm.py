"""LIBSVM classifiers (libsvm-official): C-SVC, RBF kernel, probability outputs, stored scaling.

Torch-free: the runtime imports this module. Nothing here uses pickle.

* :class:`FeatureScaling` is ``svm-scale -l -1 -u 1``: ``x -> -1 + 2 (x - lo) / (hi - lo)``, a
  feature that was constant in training maps to 0 (svm-scale drops it, which is the same thing in
  LIBSVM's sparse format). It is stored as JSON (``{"lower": -1, "upper": 1, "lo": [...],
  "hi": [...]}``) in the bundle manifest, not in svm-scale's ``-s`` restore-file format.
* :func:`train_svm` scales, grid-searches ``C x gamma`` with our own stratified k-fold split
  (numpy ``Generator(seed)``; LIBSVM's ``-v`` uses ``rand()``), then trains the final
  ``-s 0 -t 2 -c C -g gamma -b 1`` model. ``-b 1`` fits Platt scaling on an internal random
  5-fold split that calls the C library's ``rand()``; we seed it with ``srand(seed)`` (through
  ctypes, on the same C runtime LIBSVM links) under a lock, so the same data and seed give a
  byte-identical model file, in one process or across processes.
* The model a :class:`TrainedSVM` predicts with is always the one parsed back from its LIBSVM text
  file (``svm_save_model`` writes support vectors with ``%.8g``), so a saved and re-loaded model
  gives bit-identical probabilities.
* :func:`load_svm` validates the whole text file in Python before LIBSVM's C parser sees it: a
  corrupted file raises :class:`SVMModelError` naming the file and line instead of crashing.

Grid search tie-break: the highest cross-validation accuracy wins; among equals the smallest C,
then the smallest gamma (the smoothest model).
"""

from __future__ import annotations

import ctypes
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from libsvm import svm as _svm

from edge_mmer.config import SVMConfig
from edge_mmer.errors import SVMModelError

__all__ = [
    "FeatureScaling",
    "SVMModelError",
    "TrainedSVM",
    "fit_scaling",
    "grid_best",
    "load_svm",
    "set_libsvm_threads",
    "svm_from_bytes",
    "train_svm",
    "validate_model_text",
]

logger = logging.getLogger(__name__)

_NODE_DTYPE = np.dtype([("index", np.int32), ("value", np.float64)], align=True)
if _NODE_DTYPE.itemsize != ctypes.sizeof(_svm.svm_node):  # pragma: no cover - exotic ABI
    raise ImportError(
        f"unexpected libsvm svm_node size {ctypes.sizeof(_svm.svm_node)} (expected {_NODE_DTYPE.itemsize})"
    )

_TRAIN_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------- scaling


@dataclass(frozen=True, eq=False)
class FeatureScaling:
    """Per-feature min/max scaling to [-1, 1] (``svm-scale -l -1 -u 1``)."""

    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self) -> None:
        lo = np.asarray(self.lo, dtype=np.float64).reshape(-1)
        hi = np.asarray(self.hi, dtype=np.float64).reshape(-1)
        if lo.shape != hi.shape:
            raise ValueError(f"scaling: lo has {lo.size} values, hi has {hi.size}")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("scaling: lo/hi must be finite")
        if np.any(hi < lo):
            raise ValueError(f"scaling: hi < lo for feature {int(np.flatnonzero(hi < lo)[0])}")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def n_features(self) -> int:
        return int(self.lo.size)

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Scale ``X`` (N, F) or (F,) to float64; constant training features become 0."""
        x = np.asarray(X, dtype=np.float64)
        squeeze = x.ndim == 1
        x2 = x.reshape(1, -1) if squeeze else x
        if x2.ndim != 2 or x2.shape[1] != self.n_features:
            raise ValueError(f"scaling: expected features of width {self.n_features}, got shape {x.shape}")
        span = self.hi - self.lo
        const = span <= 0
        out = -1.0 + 2.0 * (x2 - self.lo) / np.where(const, 1.0, span)
        out[:, const] = 0.0
        scaled: np.ndarray = out[0] if squeeze else out
        return scaled

    def to_dict(self) -> dict[str, Any]:
        """JSON form stored in the manifest (floats round-trip exactly through ``json``)."""
        return {"lower": -1.0, "upper": 1.0, "lo": [float(v) for v in self.lo], "hi": [float(v) for v in self.hi]}

    def to_json(self) -> dict[str, Any]:
        """Alias of :meth:`to_dict`."""
        return self.to_dict()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureScaling:
        """Alias of :meth:`from_dict`."""
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureScaling:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming the bad key."""
        if not isinstance(data, Mapping):
            raise ValueError(f"scaling: expected an object, got {type(data).__name__}")
        for key in ("lower", "upper"):
            if key in data and data[key] != (-1.0 if key == "lower" else 1.0):
                raise ValueError(f"scaling.{key}: only the range [-1, 1] is supported, got {data[key]!r}")
        unknown = set(data) - {"lower", "upper", "lo", "hi"}
        if unknown:
            raise ValueError(f"scaling: unknown key(s) {sorted(unknown)}")
        values: dict[str, list[float]] = {}
        for key in ("lo", "hi"):
            raw = data.get(key)
            if not isinstance(raw, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw
            ):
                raise ValueError(f"scaling.{key}: expected a list of finite numbers")
            values[key] = [float(v) for v in raw]
        return cls(np.asarray(values["lo"]), np.asarray(values["hi"]))


def fit_scaling(X: np.ndarray) -> FeatureScaling:
    """Per-feature min and max of the training matrix ``X`` (N, F)."""
    x = _as_matrix(X, "X")
    if x.shape[0] == 0:
        raise ValueError("fit_scaling: X has no rows")
    return FeatureScaling(x.min(axis=0), x.max(axis=0))


# ------------------------------------------------------------------------------- libsvm plumbing


def _as_matrix(X: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N, F), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


@dataclass
class _NodeRows:
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


def _node_rows(x: np.ndarray) -> _NodeRows:
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
    return _NodeRows(nodes, addrs)


def _problem(y: np.ndarray, rows: _NodeRows, idx: np.ndarray | None = None) -> Any:
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
    logger.warning("libsvm: could not find the C runtime's srand(); probability models may not be reproducible")
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


def _train_model(
    y: np.ndarray,
    rows: _NodeRows,
    c: float,
    gamma: float,
    *,
    probability: bool,
    seed: int,
    idx: np.ndarray | None = None,
) -> Any:
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


def _predict_labels(model: Any, rows: _NodeRows, idx: np.ndarray) -> np.ndarray:
    ptrs = rows.pointers(idx)
    fn = _svm.libsvm.svm_predict
    _limit_threads()
    return np.fromiter((fn(model, ptrs[i]) for i in range(len(idx))), dtype=np.float64, count=len(idx))


def _save_to_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory(prefix="edge-mmer-svm-") as tmp:
        path = Path(tmp) / "model.txt"
        if _svm.libsvm.svm_save_model(os.fsencode(path), model) != 0:
            raise OSError("libsvm: svm_save_model failed")
        return path.read_bytes()


def _load_from_bytes(data: bytes, source: str) -> Any:
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


# ---------------------------------------------------------------------------- model validation

_HEADER_KEYS = (
    "svm_type",
    "kernel_type",
    "degree",
    "gamma",
    "coef0",
    "nr_class",
    "total_sv",
    "rho",
    "label",
    "probA",
    "probB",
    "prob_density_marks",
    "nr_sv",
)


@dataclass(frozen=True)
class _ModelHeader:
    nr_class: int
    total_sv: int
    gamma: float
    labels: tuple[int, ...]


def validate_model_text(
    data: bytes, source: str, n_classes: int | None = None, n_features: int | None = None
) -> tuple[int, ...]:
    """Check a LIBSVM text model completely (header and every SV line) before LIBSVM parses it.

    Requires an RBF C-SVC with probability information (``probA``/``probB``). Returns the labels in
    the file's order. Raises :class:`SVMModelError` naming ``source`` and the line.
    """
    return _validate(data, source, n_classes, n_features).labels


def _validate(data: bytes, source: str, n_classes: int | None, n_features: int | None) -> _ModelHeader:
    def fail(line_no: int | None, msg: str) -> SVMModelError:
        where = f"{source}: line {line_no}" if line_no is not None else source
        return SVMModelError(f"{where}: not a valid LIBSVM model file: {msg}")

    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise fail(None, f"non-ASCII byte at offset {exc.start}") from None
    lines = text.split("\n")
    header: dict[str, list[str]] = {}
    line_of: dict[str, int] = {}
    sv_line = None
    for i, line in enumerate(lines):
        parts = line.split()
        if not parts:
            raise fail(i + 1, "blank line in the header")
        key = parts[0]
        if key == "SV" and len(parts) == 1:
            sv_line = i
            break
        if key not in _HEADER_KEYS:
            raise fail(i + 1, f"unknown header key {key[:40]!r}")
        if key in header:
            raise fail(i + 1, f"duplicate header key {key!r}")
        header[key] = parts[1:]
        line_of[key] = i + 1
    if sv_line is None:
        raise fail(None, "no 'SV' line")

    def one(key: str) -> str:
        if key not in header:
            raise fail(None, f"missing header line '{key}'")
        if len(header[key]) != 1:
            raise fail(line_of[key], f"'{key}' needs exactly one value")
        return header[key][0]

    def values(key: str, count: int) -> list[str]:
        vals = header.get(key)
        if vals is None:
            raise fail(None, f"missing header line '{key}'")
        if len(vals) != count:
            raise fail(line_of[key], f"'{key}' needs {count} values, has {len(vals)}")
        return vals

    def ints(key: str, count: int) -> list[int]:
        vals = values(key, count)  # outside the try: its errors are ValueErrors too
        try:
            return [int(v) for v in vals]
        except ValueError:
            raise fail(line_of[key], f"'{key}' values must be integers") from None

    def floats(key: str, count: int) -> list[float]:
        vals = values(key, count)
        try:
            out = [float(v) for v in vals]
        except ValueError:
            raise fail(line_of[key], f"'{key}' values must be numbers") from None
        if not all(math.isfinite(v) for v in out):
            raise fail(line_of[key], f"'{key}' values must be finite")
        return out

    if one("svm_type") != "c_svc":
        raise fail(line_of["svm_type"], f"svm_type must be c_svc, got {one('svm_type')[:40]!r}")
    if one("kernel_type") != "rbf":
        raise fail(line_of["kernel_type"], f"kernel_type must be rbf, got {one('kernel_type')[:40]!r}")
    (gamma,) = floats("gamma", 1)
    if gamma <= 0:
        raise fail(line_of["gamma"], "gamma must be > 0")
    (nr_class,) = ints("nr_class", 1)
    if not 2 <= nr_class <= 1000:
        raise fail(line_of["nr_class"], f"nr_class must be 2..1000, got {nr_class}")
    (total_sv,) = ints("total_sv", 1)
    if not 1 <= total_sv <= 10_000_000:
        raise fail(line_of["total_sv"], f"total_sv must be >= 1, got {total_sv}")
    pairs = nr_class * (nr_class - 1) // 2
    floats("rho", pairs)
    labels = ints("label", nr_class)
    if len(set(labels)) != nr_class:
        raise fail(line_of["label"], "labels must be distinct")
    if n_classes is not None and not all(0 <= v < n_classes for v in labels):
        raise fail(line_of["label"], f"labels must be class indices 0..{n_classes - 1}, got {labels}")
    if "probA" not in header or "probB" not in header:
        raise fail(None, "no probability information (probA/probB): train with -b 1")
    floats("probA", pairs)
    floats("probB", pairs)
    if "prob_density_marks" in header:
        raise fail(line_of["prob_density_marks"], "prob_density_marks is for one-class SVMs")
    for key in ("degree", "coef0"):
        if key in header:
            floats(key, 1)
    nr_sv = ints("nr_sv", nr_class)
    if any(v < 0 for v in nr_sv) or sum(nr_sv) != total_sv:
        raise fail(line_of["nr_sv"], f"nr_sv {nr_sv} does not add up to total_sv {total_sv}")

    body = lines[sv_line + 1 :]
    if body and body[-1] == "":
        body = body[:-1]
    if len(body) != total_sv:
        raise fail(
            sv_line + 2 + min(len(body), total_sv), f"expected {total_sv} support vector lines, found {len(body)}"
        )
    n_coef = nr_class - 1
    for j, line in enumerate(body):
        line_no = sv_line + 2 + j
        tokens = line.split()
        if len(tokens) < n_coef:
            raise fail(line_no, f"support vector needs {n_coef} coefficients")
        try:
            coefs = [float(t) for t in tokens[:n_coef]]
        except ValueError:
            raise fail(line_no, "bad coefficient") from None
        if not all(math.isfinite(v) for v in coefs):
            raise fail(line_no, "non-finite coefficient")
        last = 0
        for tok in tokens[n_coef:]:
            idx_s, sep, val_s = tok.partition(":")
            if not sep:
                raise fail(line_no, f"expected index:value, got {tok[:40]!r}")
            try:
                idx = int(idx_s)
                val = float(val_s)
            except ValueError:
                raise fail(line_no, f"bad index:value {tok[:40]!r}") from None
            if idx <= last:
                raise fail(line_no, "feature indices must be increasing and >= 1")
            if n_features is not None and idx > n_features:
                raise fail(line_no, f"feature index {idx} > number of features {n_features}")
            if not math.isfinite(val):
                raise fail(line_no, "non-finite feature value")
            last = idx
    return _ModelHeader(nr_class=nr_class, total_sv=total_sv, gamma=gamma, labels=tuple(labels))


# ------------------------------------------------------------------------------------ the model


@dataclass(eq=False)
class TrainedSVM:
    """A LIBSVM RBF C-SVC with probability outputs, its scaling, and how it was chosen.

    ``labels`` are the class indices present in training (sorted); ``predict_proba`` always has
    ``n_classes`` columns ordered 0..K-1, a class absent from training gets probability 0.
    """

    model: Any = field(repr=False)
    scaling: FeatureScaling = field(repr=False)
    labels: tuple[int, ...]
    n_classes: int
    c: float
    gamma: float
    cv_accuracy: float
    grid: list[tuple[float, float, float]] = field(default_factory=list, repr=False)
    model_text: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        internal = [int(v) for v in self.model.get_labels()]
        if any(not 0 <= v < self.n_classes for v in internal):
            raise SVMModelError(f"model labels {internal} are not class indices 0..{self.n_classes - 1}")
        self._columns = np.asarray(internal, dtype=np.int64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (N, n_classes) float64; rows sum to 1. Accepts (F,) for one row."""
        x = np.asarray(X, dtype=np.float64)
        single = x.ndim == 1
        x2 = _as_matrix(x.reshape(1, -1) if single else x, "X")
        scaled = self.scaling.apply(x2)
        rows = _node_rows(scaled)
        ptrs = rows.pointers()
        k = len(self._columns)
        buf = (ctypes.c_double * k)()
        view = np.ctypeslib.as_array(buf)
        raw = np.empty((x2.shape[0], k), dtype=np.float64)
        fn = _svm.libsvm.svm_predict_probability
        _limit_threads()
        for i in range(x2.shape[0]):
            fn(self.model, ptrs[i], buf)
            raw[i] = view
        out = np.zeros((x2.shape[0], self.n_classes), dtype=np.float64)
        out[:, self._columns] = raw
        out /= out.sum(axis=1, keepdims=True)
        return out[0] if single else out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class index with the highest probability (argmax of :meth:`predict_proba`), int64."""
        proba = self.predict_proba(X)
        return np.asarray(np.argmax(proba, axis=-1), dtype=np.int64)

    def model_bytes(self) -> bytes:
        """The LIBSVM text model file (as written by ``svm_save_model``)."""
        return self.model_text

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the LIBSVM text model file; the scaling goes in the manifest (:meth:`manifest_entry`)."""
        out = Path(path)
        out.write_bytes(self.model_text)
        return out

    def manifest_entry(self, model_file: str) -> dict[str, Any]:
        """The bundle manifest's ``svms.<channel>`` entry for this model stored at ``model_file``."""
        return {
            "model": model_file,
            "scaling": self.scaling.to_dict(),
            "c": float(self.c),
            "gamma": float(self.gamma),
            "cv_accuracy": float(self.cv_accuracy),
        }


def svm_from_bytes(
    data: bytes,
    scaling: FeatureScaling | Mapping[str, Any],
    n_classes: int,
    *,
    source: str = "<svm model>",
    c: float = math.nan,
    cv_accuracy: float = math.nan,
) -> TrainedSVM:
    """Validate and load a LIBSVM text model from bytes (``source`` names it in errors)."""
    if not isinstance(scaling, FeatureScaling):
        try:
            scaling = FeatureScaling.from_dict(scaling)
        except ValueError as exc:
            raise SVMModelError(f"{source}: {exc}") from None
    header = _validate(data, source, n_classes, scaling.n_features)
    model = _load_from_bytes(data, source)
    return TrainedSVM(
        model=model,
        scaling=scaling,
        labels=tuple(sorted(header.labels)),
        n_classes=n_classes,
        c=float(c),
        gamma=header.gamma,
        cv_accuracy=float(cv_accuracy),
        grid=[],
        model_text=bytes(data),
    )


def load_svm(
    model_path: str | os.PathLike[str] | bytes,
    scaling: FeatureScaling | Mapping[str, Any],
    n_classes: int,
    *,
    c: float = math.nan,
    cv_accuracy: float = math.nan,
) -> TrainedSVM:
    """Load a LIBSVM text model file saved by :meth:`TrainedSVM.save` (path as str, Path or bytes)."""
    path = Path(os.fsdecode(model_path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SVMModelError(f"{path}: cannot read LIBSVM model file: {exc.strerror or exc}") from None
    return svm_from_bytes(data, scaling, n_classes, source=str(path), c=c, cv_accuracy=cv_accuracy)


# ------------------------------------------------------------------------------------- training


def _stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    fold = np.empty(y.size, dtype=np.int64)
    offset = 0
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold[idx] = (np.arange(idx.size) + offset) % k
        offset += idx.size
    return fold


def train_svm(
    X: np.ndarray,
    y: np.ndarray,
    cfg: SVMConfig,
    seed: int,
    progress: bool = False,
    *,
    n_classes: int | None = None,
) -> TrainedSVM:
    """Scale, grid-search (C, gamma) by stratified k-fold CV accuracy, train the final -b 1 model.

    ``y`` holds class indices 0..K-1 (``n_classes`` defaults to ``max(y) + 1``). Deterministic:
    the same data and seed give a byte-identical model file.
    """
    cfg.validate()
    x = _as_matrix(X, "X")
    labels_in = np.asarray(y)
    if labels_in.ndim != 1 or labels_in.size != x.shape[0]:
        raise ValueError(f"y: expected shape ({x.shape[0]},), got {labels_in.shape}")
    if labels_in.size and not np.all(np.equal(np.mod(labels_in, 1), 0)):
        raise ValueError("y: class indices must be integers")
    yi = labels_in.astype(np.int64)
    present = np.unique(yi)
    if present.size < 2:
        raise ValueError(f"y: need at least two classes, got {present.tolist()}")
    if present[0] < 0:
        raise ValueError("y: class indices must be >= 0")
    k_classes = int(present[-1]) + 1 if n_classes is None else int(n_classes)
    if present[-1] >= k_classes:
        raise ValueError(f"y: class index {int(present[-1])} >= n_classes {k_classes}")
    if x.shape[0] < cfg.folds:
        raise ValueError(f"need at least {cfg.folds} samples for {cfg.folds}-fold cross-validation, got {x.shape[0]}")

    scaling = fit_scaling(x)
    rows = _node_rows(scaling.apply(x))
    yf = yi.astype(np.float64)
    folds = _stratified_folds(yi, cfg.folds, np.random.default_rng(seed))
    log = logger.info if progress else logger.debug

    grid: list[tuple[float, float, float]] = []
    best: tuple[int, float, float] | None = None  # (correct, C, gamma)
    for c in cfg.c_grid:
        for gamma in cfg.gamma_grid:
            correct = 0
            for f in range(cfg.folds):
                test = np.flatnonzero(folds == f)
                train = np.flatnonzero(folds != f)
                model = _train_model(yf, rows, float(c), float(gamma), probability=False, seed=seed, idx=train)
                pred = _predict_labels(model, rows, test)
                correct += int(np.sum(pred == yf[test]))
                del model
            acc = correct / x.shape[0]
            grid.append((float(c), float(gamma), acc))
            log("svm grid: C=%g gamma=%g cv accuracy=%.4f", c, gamma, acc)
            if best is None or correct > best[0] or (correct == best[0] and (c, gamma) < (best[1], best[2])):
                best = (correct, float(c), float(gamma))
    assert best is not None
    correct, c_best, g_best = best
    cv_acc = correct / x.shape[0]
    log(
        "svm: best C=%g gamma=%g cv accuracy=%.4f (%d-fold); training the probability model",
        c_best,
        g_best,
        cv_acc,
        cfg.folds,
    )

    final = _train_model(yf, rows, c_best, g_best, probability=True, seed=seed)
    text = _save_to_bytes(final)
    del final
    loaded = _load_from_bytes(text, "<trained svm>")
    return TrainedSVM(
        model=loaded,
        scaling=scaling,
        labels=tuple(int(v) for v in present),
        n_classes=k_classes,
        c=c_best,
        gamma=g_best,
        cv_accuracy=cv_acc,
        grid=grid,
        model_text=text,
    )


def grid_best(grid: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    """The (C, gamma, accuracy) entry :func:`train_svm` picks from a grid (ties: smallest C, gamma)."""
    return min(grid, key=lambda e: (-e[2], e[0], e[1]))
