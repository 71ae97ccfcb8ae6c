"""Chi-square feature selection (paper eq. 1), numpy only.

For a binary feature ``f`` and class ``c`` over ``N`` samples (A = present & c, B = present & not c,
C = absent & c, D = absent & not c)::

    Chi(f, c) = N (A D - B C)^2 / ((A + C)(B + D)(A + B)(C + D)),   Chi_max(f) = max_c Chi(f, c)

A zero denominator scores 0. Continuous features are binarised as "present" = value strictly above
the feature's training-set median. The top ``ceil(keep_fraction * F)`` features by ``Chi_max`` are
kept (ties broken by the lower feature index); :meth:`ChiSquareSelection.apply` keeps them in their
original order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["ChiSquareSelection", "chi_square_scores", "fit_chi_square", "n_keep"]


def _check_labels(y: np.ndarray, n_samples: int, n_classes: int) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n_samples:
        raise ValueError(f"labels must have shape ({n_samples},), got {labels.shape}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    integral = np.issubdtype(labels.dtype, np.integer) or (
        np.issubdtype(labels.dtype, np.floating) and bool(np.all(np.mod(labels, 1) == 0))
    )
    if not integral:
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]")
    return labels


def chi_square_scores(binary: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """``Chi(f, c)`` for every feature and class: float64 ``(F, n_classes)``.

    ``binary``: ``(N, F)`` presence matrix (bool, or 0/1). Counts come from one matrix product
    with the one-hot labels; a zero denominator (feature constant, or class absent/everything)
    scores 0.
    """
    b = np.asarray(binary)
    if b.ndim != 2:
        raise ValueError(f"expected an (N, F) binary matrix, got shape {b.shape}")
    n = b.shape[0]
    if n == 0:
        raise ValueError("chi-square needs at least one sample")
    labels = _check_labels(y, n, n_classes)
    if b.dtype != np.bool_:
        if not np.all((b == 0) | (b == 1)):
            raise ValueError("binary matrix must contain only 0/1 (or bool) values")
        b = b.astype(bool)
    xf = b.astype(np.float64)
    onehot = np.zeros((n, n_classes), dtype=np.float64)
    onehot[np.arange(n), labels] = 1.0
    a = xf.T @ onehot  # (F, K): present & class c
    present = xf.sum(axis=0)[:, None]  # A + B
    in_class = onehot.sum(axis=0)[None, :]  # A + C
    b_ = present - a
    c_ = in_class - a
    d_ = n - a - b_ - c_
    num = n * (a * d_ - b_ * c_) ** 2
    den = (a + c_) * (b_ + d_) * (a + b_) * (c_ + d_)
    out: np.ndarray = np.zeros_like(num)
    np.divide(num, den, out=out, where=den > 0)
    return out


def n_keep(keep_fraction: float, n_features: int) -> int:
    """``ceil(keep_fraction * n_features)`` (robust to float rounding, at least 1)."""
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    return max(1, min(n_features, math.ceil(round(keep_fraction * n_features, 9))))


@dataclass
class ChiSquareSelection:
    """A fitted selection: per-feature training medians, ``Chi_max`` scores and the keep mask."""

    medians: np.ndarray  # (F,) float32
    scores: np.ndarray  # (F,) float64, Chi_max
    mask: np.ndarray  # (F,) bool
    keep_fraction: float

    @property
    def n_features(self) -> int:
        return int(self.mask.shape[0])

    @property
    def n_selected(self) -> int:
        return int(self.mask.sum())

    @property
    def indices(self) -> np.ndarray:
        """Indices of the kept features, ascending (the order :meth:`apply` returns them in)."""
        return np.flatnonzero(self.mask)

    @property
    def ranking(self) -> np.ndarray:
        """All feature indices by descending ``Chi_max`` (ties: lower index first)."""
        return np.argsort(-self.scores, kind="stable")

    def binarize(self, x: np.ndarray) -> np.ndarray:
        """``x > medians`` (works on ``(F,)`` or ``(N, F)``)."""
        return np.asarray(x) > self.medians

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Keep the selected columns: ``(N, F) -> (N, k)`` or ``(F,) -> (k,)``."""
        arr = np.asarray(x)
        if arr.ndim not in (1, 2) or arr.shape[-1] != self.n_features:
            raise ValueError(f"expected (N, {self.n_features}) or ({self.n_features},) features, got shape {arr.shape}")
        return arr[..., self.mask]

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Named arrays for storage (e.g. safetensors): ``{prefix}medians``, ``scores``, ``mask`` (uint8),
        ``keep_fraction`` (float64, shape (1,))."""
        return {
            f"{prefix}medians": np.ascontiguousarray(self.medians, dtype=np.float32),
            f"{prefix}scores": np.ascontiguousarray(self.scores, dtype=np.float64),
            f"{prefix}mask": np.ascontiguousarray(self.mask, dtype=np.uint8),
            f"{prefix}keep_fraction": np.array([self.keep_fraction], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "") -> ChiSquareSelection:
        """Inverse of :meth:`to_arrays`; raises ``KeyError``/``ValueError`` on missing or inconsistent arrays."""
        try:
            medians = np.asarray(arrays[f"{prefix}medians"], dtype=np.float32).reshape(-1)
            scores = np.asarray(arrays[f"{prefix}scores"], dtype=np.float64).reshape(-1)
            mask = np.asarray(arrays[f"{prefix}mask"]).reshape(-1).astype(bool)
            keep = float(np.asarray(arrays[f"{prefix}keep_fraction"]).reshape(-1)[0])
        except KeyError as exc:
            raise KeyError(f"chi-square selection array missing: {exc.args[0]!r}") from exc
        if not (medians.shape == scores.shape == mask.shape):
            raise ValueError(
                f"chi-square selection arrays disagree: medians {medians.shape}, scores {scores.shape}, "
                f"mask {mask.shape}"
            )
        if not mask.any():
            raise ValueError("chi-square selection mask keeps no feature")
        return cls(medians=medians, scores=scores, mask=mask, keep_fraction=keep)


def fit_chi_square(x: np.ndarray, y: np.ndarray, n_classes: int, keep_fraction: float = 0.5) -> ChiSquareSelection:
    """Fit the selection on training features ``x`` ``(N, F)`` and labels ``y`` ``(N,)``.

    Binarise with ``x > median`` (float32 medians, the stored values), score with
    :func:`chi_square_scores`, keep the top ``ceil(keep_fraction * F)`` by ``Chi_max``
    (ties: lower index). ``keep_fraction=1`` keeps every feature.
    """
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"expected (N, F) features, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"features are empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise ValueError("features contain NaN/inf")
    k = n_keep(keep_fraction, arr.shape[1])
    medians = np.median(arr, axis=0).astype(np.float32)
    binary = arr > medians
    chi = chi_square_scores(binary, y, n_classes)
    scores = chi.max(axis=1)
    order = np.argsort(-scores, kind="stable")
    mask = np.zeros(arr.shape[1], dtype=bool)
    mask[order[:k]] = True
    logger.debug("chi-square selection: kept %d of %d features (top Chi_max %.3g)", k, arr.shape[1], scores[order[0]])
    return ChiSquareSelection(medians=medians, scores=scores, mask=mask, keep_fraction=float(keep_fraction))
