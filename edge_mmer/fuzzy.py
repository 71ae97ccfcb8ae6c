"""Decision fusion with a fuzzy integral (Sugeno or Choquet) over a lambda-fuzzy measure.

See ``shared/reference/fusion.md``. Channels (e.g. ``"speech"``, ``"face"``, ``"fused"``) have
per-class densities ``g_i[k]`` in (0, 1). For every non-empty subset ``S`` of channels and every
class ``k``, lambda is the unique root ``> -1``, ``!= 0`` of ``1 + lambda = prod_{i in S}(1 + lambda g_i)``
(0 when ``sum g = 1``, and 0 for a single channel). All lambdas are solved at training time
(:func:`fit_fuzzy_measure`) and stored, so the runtime never needs scipy.

Normalisation: a fuzzy measure on a set ``X`` satisfies ``g(X) = 1``. For ``|S| >= 2`` the lambda
recursion gives ``g(A_n) = 1`` by construction of lambda (up to rounding; it is set to exactly 1).
For ``|S| = 1`` the set ``X = {x}`` has ``g({x}) = g(X) = 1`` by that axiom, whatever the density:
hence with ONE channel present both integrals return that channel's supports unchanged
(Sugeno ``min(h, 1) = h``, Choquet ``h * 1 = h``). In general the integral over the channels
present uses the measure restricted to them, renormalised by its own lambda so that the full
present subset has measure 1.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "FuzzyMeasure",
    "densities_from_recall",
    "fit_fuzzy_measure",
    "fuzzy_integral",
    "solve_lambda",
    "subset_key",
]

METHODS = ("sugeno", "choquet")
_SUM_TOL = 1e-12


def _reduced_coeffs(g: Sequence[float]) -> list[float]:
    """Coefficients (ascending powers) of ``p(lambda) = (prod(1 + lambda g_i) - 1 - lambda) / lambda``.

    With the elementary symmetric polynomials ``e_k`` of ``g``:
    ``p(lambda) = (e_1 - 1) + e_2 lambda + ... + e_n lambda^(n-1)``. Dividing out the trivial root
    ``lambda = 0`` avoids the cancellation in ``prod - 1 - lambda`` (which makes the root
    ill-conditioned when ``sum g`` is close to 1); ``e_1 - 1`` is computed with ``math.fsum``.
    """
    e = [1.0] + [0.0] * len(g)
    for gi in g:
        for k in range(len(g), 0, -1):
            e[k] += gi * e[k - 1]
    return [math.fsum([*g, -1.0]), *e[2:]]


def _reduced(lam: float, coeffs: Sequence[float]) -> float:
    """Horner evaluation of the reduced polynomial (see :func:`_reduced_coeffs`)."""
    acc = 0.0
    for c in reversed(coeffs):
        acc = acc * lam + c
    return acc


def _bracket(coeffs: Sequence[float]) -> tuple[float, float]:
    """``(lo, hi)`` with ``p(lo) < 0 < p(hi)`` around the nonzero root.

    ``p(-1) = -prod(1 - g_i) < 0`` and ``p(0) = sum g - 1``: for ``sum g > 1`` the root is in
    (-1, 0); for ``sum g < 1`` it is positive (``p`` has positive higher coefficients and grows
    without bound), found by doubling.
    """
    if coeffs[0] > 0.0:
        return -1.0, 0.0
    hi = 1.0
    while _reduced(hi, coeffs) <= 0.0:
        hi *= 2.0
        if hi > 1e300:
            raise ValueError("lambda root could not be bracketed")
    return 0.0, hi


def _bisect(coeffs: Sequence[float], lo: float, hi: float, tol: float = 1e-15, max_iter: int = 4000) -> float:
    """Bisection on ``p`` with ``p(lo) < 0 < p(hi)``; stops at relative width ``tol`` (or float resolution)."""
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi) or hi - lo <= tol * max(abs(lo), abs(hi)):
            return mid
        value = _reduced(mid, coeffs)
        if value == 0.0:
            return mid
        if value < 0.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def solve_lambda(densities: Sequence[float], method: str = "auto") -> float:
    """The lambda of a lambda-fuzzy measure with the given densities (each in the open interval (0, 1)).

    Returns the unique root ``> -1``, ``!= 0`` of ``1 + lambda = prod(1 + lambda g_i)``; 0 when
    ``|sum g - 1| <= 1e-12`` (additive measure) or for a single density (see the module docstring
    for how one channel is normalised). The solver works on ``(prod(1 + lambda g_i) - 1 - lambda) / lambda``
    (a polynomial without the trivial root 0), bracketed in (-1, 0) or (0, 2^m). ``method``:
    ``"brentq"`` (scipy), ``"bisect"`` (pure Python, relative tolerance 1e-15) or ``"auto"``
    (brentq when scipy is importable, else bisection). The runtime never calls this: lambdas are
    stored in the :class:`FuzzyMeasure`.
    """
    g = [float(v) for v in densities]
    if not g:
        raise ValueError("solve_lambda needs at least one density")
    bad = [v for v in g if not (0.0 < v < 1.0) or not math.isfinite(v)]
    if bad:
        raise ValueError(f"densities must lie in the open interval (0, 1), got {bad}")
    if method not in ("auto", "brentq", "bisect"):
        raise ValueError(f"method must be 'auto', 'brentq' or 'bisect', got {method!r}")
    coeffs = _reduced_coeffs(g)
    if len(g) == 1 or abs(coeffs[0]) <= _SUM_TOL:
        return 0.0
    lo, hi = _bracket(coeffs)
    if method in ("auto", "brentq"):
        try:
            from scipy.optimize import brentq
        except ImportError:
            if method == "brentq":
                raise
            logger.debug("scipy not importable: solving lambda by bisection")
        else:
            root = brentq(_reduced, lo, hi, args=(coeffs,), xtol=1e-300, rtol=4 * float(np.finfo(float).eps),
                          maxiter=500)
            return float(root)
    return _bisect(coeffs, lo, hi)


def subset_key(channels: Iterable[str]) -> str:
    """Canonical key of a channel subset: names sorted and joined with ``+`` (e.g. ``"face+speech"``)."""
    names = sorted(set(channels))
    if not names:
        raise ValueError("empty channel subset")
    return "+".join(names)


def densities_from_recall(recall: np.ndarray, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """Per-class densities from per-class validation recall: ``clip(recall, low, high)`` (float64).

    Recall is used as the density directly (the paper uses classifier accuracy); clipping keeps
    every density strictly inside (0, 1), as the lambda measure requires (a recall of 0 or 1 would
    make a channel worthless or dictatorial).
    """
    r = np.asarray(recall, dtype=np.float64)
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"need 0 < low < high < 1, got low={low}, high={high}")
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"recall must be a non-empty 1-D array, got shape {r.shape}")
    if not np.all(np.isfinite(r)) or r.min() < 0.0 or r.max() > 1.0:
        raise ValueError("recall values must be finite and within [0, 1]")
    return np.clip(r, low, high)


@dataclass
class FuzzyMeasure:
    """Per-class lambda-fuzzy measures over named channels, with lambda solved for every subset.

    ``densities[channel]``: ``(K,)`` float64 in (0, 1). ``lambdas[subset_key(S)]``: ``(K,)`` float64
    for every non-empty subset ``S`` of ``channels``.
    """

    channels: tuple[str, ...]
    densities: dict[str, np.ndarray]
    lambdas: dict[str, np.ndarray]

    @property
    def n_classes(self) -> int:
        return int(next(iter(self.densities.values())).shape[0])

    def lambda_for(self, channels: Iterable[str]) -> np.ndarray:
        """The stored ``(K,)`` lambdas of the subset ``channels``."""
        key = subset_key(channels)
        if key not in self.lambdas:
            raise KeyError(f"no lambda stored for channel subset {key!r} (channels: {', '.join(self.channels)})")
        return self.lambdas[key]

    def validate(self) -> FuzzyMeasure:
        if not self.channels:
            raise ValueError("fuzzy measure has no channels")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"duplicate channel names: {self.channels}")
        for ch in self.channels:
            if not ch or "+" in ch:
                raise ValueError(f"channel names must be non-empty and contain no '+', got {ch!r}")
        if set(self.densities) != set(self.channels):
            raise ValueError(f"densities given for {sorted(self.densities)}, channels are {list(self.channels)}")
        shapes = {np.asarray(d).shape for d in self.densities.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1 or next(iter(shapes))[0] == 0:
            raise ValueError(f"densities must all have the same (K,) shape, got {shapes}")
        k = self.n_classes
        for ch, d in self.densities.items():
            if not np.all((d > 0) & (d < 1)):
                raise ValueError(f"densities of channel {ch!r} must lie in (0, 1), got {np.asarray(d).tolist()}")
        for r in range(1, len(self.channels) + 1):
            for subset in itertools.combinations(self.channels, r):
                key = subset_key(subset)
                if key not in self.lambdas:
                    raise ValueError(f"lambda missing for channel subset {key!r}")
                lam = self.lambdas[key]
                if lam.shape != (k,) or not np.all(np.isfinite(lam)) or np.any(lam <= -1):
                    raise ValueError(f"lambdas of subset {key!r} must be {k} finite values > -1")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for the manifest (lists of floats; subset keys like ``"face+speech"``)."""
        return {
            "channels": list(self.channels),
            "densities": {ch: [float(v) for v in self.densities[ch]] for ch in self.channels},
            "lambdas": {key: [float(v) for v in self.lambdas[key]] for key in sorted(self.lambdas)},
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FuzzyMeasure:
        """Inverse of :meth:`to_dict`; validates."""
        try:
            channels = tuple(str(c) for c in data["channels"])
            densities = {str(ch): np.asarray(v, dtype=np.float64) for ch, v in data["densities"].items()}
            lambdas = {str(key): np.asarray(v, dtype=np.float64) for key, v in data["lambdas"].items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed fuzzy measure JSON: {exc!r}") from exc
        return cls(channels=channels, densities=densities, lambdas=lambdas).validate()

    @classmethod
    def from_json(cls, text: str) -> FuzzyMeasure:
        """Inverse of :meth:`to_json`; validates."""
        return cls.from_dict(json.loads(text))


def fit_fuzzy_measure(densities: Mapping[str, np.ndarray], method: str = "auto") -> FuzzyMeasure:
    """Build a :class:`FuzzyMeasure`: solve lambda per class for every non-empty subset of channels.

    ``densities``: channel name -> ``(K,)`` per-class densities in (0, 1) (see
    :func:`densities_from_recall`). Channel order is kept as given.
    """
    if not densities:
        raise ValueError("fit_fuzzy_measure needs at least one channel")
    channels = tuple(densities)
    dens = {ch: np.asarray(densities[ch], dtype=np.float64).copy() for ch in channels}
    k_values = {d.shape for d in dens.values()}
    if len(k_values) != 1 or len(next(iter(k_values))) != 1:
        raise ValueError(f"densities must all have the same (K,) shape, got {sorted(map(str, k_values))}")
    n_classes = next(iter(k_values))[0]
    lambdas: dict[str, np.ndarray] = {}
    for r in range(1, len(channels) + 1):
        for subset in itertools.combinations(channels, r):
            lam = np.empty(n_classes, dtype=np.float64)
            for k in range(n_classes):
                lam[k] = solve_lambda([float(dens[ch][k]) for ch in subset], method=method)
            lambdas[subset_key(subset)] = lam
    measure = FuzzyMeasure(channels=channels, densities=dens, lambdas=lambdas).validate()
    logger.debug("fuzzy measure over %s: full-set lambdas %s", channels, lambdas[subset_key(channels)])
    return measure


def fuzzy_integral(
    supports: Mapping[str, np.ndarray | None],
    measure: FuzzyMeasure,
    method: str = "sugeno",
) -> np.ndarray:
    """Fuse per-class supports of the channels present with a Sugeno or Choquet integral.

    ``supports``: channel -> ``(K,)`` (one decision) or ``(N, K)`` (a batch) supports in [0, 1]
    (e.g. SVM probability estimates). A channel is absent when its key is missing or its value is
    ``None``; the integral then uses the present subset's stored lambda (see the module docstring:
    one channel returns its supports unchanged). Returns float64 of the input's shape.

    Per class ``k``: supports sorted descending ``h_(1) >= ... >= h_(n)`` with densities ``g_(i)``,
    ``g(A_1) = g_(1)``, ``g(A_i) = g_(i) + g(A_{i-1}) + lambda_k g_(i) g(A_{i-1})``, ``g(A_n) := 1``;
    Sugeno ``max_i min(h_(i), g(A_i))``; Choquet ``sum_i h_(i) (g(A_i) - g(A_{i-1}))``.
    """
    if method not in METHODS:
        raise ValueError(f"fuzzy integral method must be 'sugeno' or 'choquet', got {method!r}")
    unknown = [ch for ch in supports if ch not in measure.channels]
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; the measure has {list(measure.channels)}")
    present = [ch for ch in measure.channels if supports.get(ch) is not None]
    if not present:
        raise ValueError("fuzzy_integral: no channel supports given (all channels absent)")
    k = measure.n_classes
    arrays = [np.asarray(supports[ch], dtype=np.float64) for ch in present]
    shape = arrays[0].shape
    for ch, arr in zip(present, arrays, strict=True):
        if arr.shape != shape or arr.ndim not in (1, 2) or arr.shape[-1] != k:
            raise ValueError(f"supports of channel {ch!r} have shape {arr.shape}; expected (K,) or (N, K) with K={k}, "
                             f"the same for every channel")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"supports of channel {ch!r} contain NaN/inf")
        if arr.size and (arr.min() < -1e-6 or arr.max() > 1 + 1e-6):
            raise ValueError(f"supports of channel {ch!r} must lie in [0, 1]")
    h = np.clip(np.stack(arrays, axis=0), 0.0, 1.0)  # (n, ..., K)
    g = np.stack([measure.densities[ch] for ch in present], axis=0)  # (n, K)
    g = np.broadcast_to(g.reshape((len(present),) + (1,) * (h.ndim - 2) + (k,)), h.shape)
    lam = measure.lambda_for(present)  # (K,)

    order = np.argsort(-h, axis=0, kind="stable")
    hs = np.take_along_axis(h, order, axis=0)
    gs = np.take_along_axis(g, order, axis=0)
    n = len(present)
    g_a = np.empty_like(hs)
    g_a[0] = gs[0]
    for i in range(1, n):
        g_a[i] = gs[i] + g_a[i - 1] + lam * gs[i] * g_a[i - 1]
    g_a[n - 1] = 1.0
    if method == "sugeno":
        sugeno: np.ndarray = np.max(np.minimum(hs, g_a), axis=0)
        return sugeno
    increments = np.diff(g_a, axis=0, prepend=0.0)
    choquet: np.ndarray = np.sum(hs * increments, axis=0)
    return choquet
