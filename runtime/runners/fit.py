"""Fit each call to the shapes a plan was built for: pad or split the face batch, clamp the time axis.

A TensorRT plan accepts only shapes inside its optimization profile, and a DLA plan only the one shape
it was built with (min = opt = max; TensorRT's DLA restrictions: "the runtime dimensions must be the
same as the dimensions used for building"). The pipeline hands the face encoder 1..N crops and the
speech encoder as many log-mel frames as the VAD cut, so :class:`ShapeFit` sits between them:

* ``batch`` axis (axis 0, named ``batch`` in the manifest): fewer rows than the plan's minimum are
  padded with copies of the last row and the padded rows' outputs dropped before anyone sees them
  (so the face encoder's mean is over the real crops only); more rows than its maximum are run in
  chunks of the maximum and the outputs concatenated. Each row's output depends on that row only
  (inference-mode batch norm), so the result is the one an unconstrained plan gives.
* any other named axis (``time``): more frames than the maximum keep the first ``max`` (a VAD cut
  with ``frame_ms = 30`` overshoots ``max_utterance_s`` by up to one frame); fewer than the minimum
  repeat the last frame. Said once per network (WARNING), since it changes what the network sees.

The bounds come from :meth:`Runner.shape_bounds` when the runner has one (a TensorRT plan's recorded
profile, an ONNX model's fixed dimensions); a runner without bounds is passed through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from edge_mmer.runtime.logonce import LogOnce

from .base import Runner, RunnerError
from .delegate import DelegatingRunner

__all__ = ["Bounds", "ShapeFit", "fit_runner"]

log = logging.getLogger(__name__)
_once = LogOnce(log)

Bounds = Mapping[str, tuple[Sequence[int | None], Sequence[int | None]]]
"""input name -> (min shape, max shape); None where an axis has no bound."""


def _runner_bounds(runner: Runner) -> Bounds | None:
    get = getattr(runner, "shape_bounds", None)
    return get() if callable(get) else None


class ShapeFit(DelegatingRunner):
    """``inner`` with every call fitted to ``bounds`` (see the module docstring); delegates the rest."""

    def __init__(self, inner: Runner, bounds: Bounds | None = None) -> None:
        super().__init__(inner.network, inner.inputs, inner.outputs)
        self.inner = inner
        self.backend = inner.backend
        self._bounds = bounds

    _own = ("inner",)

    def target(self) -> Runner:
        return self.inner

    def shape_bounds(self) -> Bounds | None:
        return self._bounds if self._bounds is not None else _runner_bounds(self.inner)

    def _batch_limits(self, bounds: Bounds) -> tuple[int, int | None] | None:
        """(min, max) rows of the batch axis, or None when no input has a bounded ``batch`` axis 0."""
        for spec in self.inputs:
            if spec.name in bounds and spec.shape and spec.shape[0] == "batch":
                lo, hi = bounds[spec.name]
                return int(lo[0] or 1), (None if hi[0] is None else int(hi[0]))
        return None

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        bounds = self.shape_bounds()
        if not bounds:
            return self.inner.infer(feeds)
        feeds = {name: self._fit_axes(name, arr, bounds) for name, arr in feeds.items()}
        limits = self._batch_limits(bounds)
        if limits is None:
            return self.inner.infer(feeds)
        return self._run_batched(feeds, *limits)

    def _fit_axes(self, name: str, arr: np.ndarray, bounds: Bounds) -> np.ndarray:
        """Clamp (or edge-pad) every named axis but the batch axis to the bounds of input ``name``."""
        spec = next((s for s in self.inputs if s.name == name), None)
        if spec is None or name not in bounds or arr.ndim != len(spec.shape):
            return arr
        lo, hi = bounds[name]
        for axis, dim in enumerate(spec.shape):
            if not isinstance(dim, str) or (axis == 0 and dim == "batch"):
                continue
            n, top, bottom = arr.shape[axis], hi[axis], lo[axis] or 1
            if top is not None and n > top:
                _once(logging.WARNING, f"{self.network}:{name}:{axis}:over",
                      "%s: input '%s' has %d along '%s', the plan takes at most %d: the last %d dropped "
                      "(said once)", self.network, name, n, dim, top, n - top)
                arr = np.take(arr, np.arange(top), axis=axis)
            elif n < bottom:
                _once(logging.WARNING, f"{self.network}:{name}:{axis}:under",
                      "%s: input '%s' has %d along '%s', the plan takes at least %d: the last repeated "
                      "(said once)", self.network, name, n, dim, bottom)
                arr = np.take(arr, np.minimum(np.arange(bottom), n - 1), axis=axis)
        return np.ascontiguousarray(arr)

    def _run_batched(self, feeds: Mapping[str, np.ndarray], lo: int, hi: int | None) -> dict[str, np.ndarray]:
        batched = [s.name for s in self.inputs if s.shape and s.shape[0] == "batch"]
        rows = {feeds[n].shape[0] for n in batched}
        if len(rows) != 1:
            raise RunnerError(f"{self.network}: batch inputs {batched} disagree on the batch size {sorted(rows)}")
        (n,) = rows
        if n == 0:
            raise RunnerError(f"{self.network}: an empty batch")
        if lo <= n and (hi is None or n <= hi):
            return self.inner.infer(feeds)
        step = n if hi is None else hi
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, n, step):
            stop = min(start + step, n)
            chunk = {k: (v[start:stop] if k in batched else v) for k, v in feeds.items()}
            parts.append(self._padded(chunk, batched, stop - start, lo))
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}

    def _padded(self, chunk: Mapping[str, np.ndarray], batched: Sequence[str], n: int,
                lo: int) -> dict[str, np.ndarray]:
        """Run ``n`` rows padded up to ``lo`` with copies of the last row; the padded rows' outputs dropped."""
        if n >= lo:
            return self.inner.infer(chunk)
        idx = np.minimum(np.arange(lo), n - 1)
        padded = {k: (np.ascontiguousarray(v[idx]) if k in batched else v) for k, v in chunk.items()}
        out = self.inner.infer(padded)
        return {k: v[:n] for k, v in out.items()}


def fit_runner(runner: Runner) -> Runner:
    """``runner`` behind a :class:`ShapeFit` when it has shape bounds; as it is otherwise."""
    if isinstance(runner, ShapeFit) or not callable(getattr(runner, "shape_bounds", None)):
        return runner
    return ShapeFit(runner)
