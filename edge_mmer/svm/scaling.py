"""Feature scaling to [-1, 1], as ``svm-scale -l -1 -u 1`` does it, stored as JSON in the manifest.

``x -> -1 + 2 (x - lo) / (hi - lo)``; a feature that was constant in training maps to 0 (svm-scale
drops it, which is the same thing in LIBSVM's sparse format). The manifest holds ``{"lower": -1,
"upper": 1, "lo": [...], "hi": [...]}``, not svm-scale's ``-s`` restore-file format.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FeatureScaling", "as_matrix", "fit_scaling"]


def as_matrix(X: np.ndarray, name: str) -> np.ndarray:
    """``X`` as a finite float64 (N, F) matrix; raises ``ValueError`` naming ``name``."""
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N, F), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return x


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
    x = as_matrix(X, "X")
    if x.shape[0] == 0:
        raise ValueError("fit_scaling: X has no rows")
    return FeatureScaling(x.min(axis=0), x.max(axis=0))
