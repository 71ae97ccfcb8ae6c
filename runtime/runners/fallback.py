"""A runner failure during inference never kills the loop: the decision is skipped and counted, and a
TensorRT runner that keeps failing hands its network to ONNX Runtime (or stops the run, clearly).

* :func:`skip_failed_decision` is the one guarded call in the pipeline: a :class:`RunnerError` from any
  network skips that decision, counts ``decisions_skipped`` in the stats and is logged once per
  message (it names the network and the input shapes).
* :class:`FallbackRunner` wraps each TensorRT runner. After ``max_failures`` failed calls in a row it
  switches to the ONNX Runtime runner of the same network (``--backend auto``) and retries the call
  there, or raises :class:`RunError` (``--backend tensorrt``, which never falls back) so the run stops
  with a message saying what failed and what to do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TypeVar

import numpy as np

from edge_mmer.errors import RunError
from edge_mmer.runtime.logonce import LogOnce
from edge_mmer.runtime.stats import RuntimeStats

from .base import Runner, RunnerError
from .delegate import DelegatingRunner

__all__ = ["MAX_FAILURES", "FallbackRunner", "skip_failed_decision"]

log = logging.getLogger(__name__)
_once = LogOnce(log)

MAX_FAILURES = 3
"""Failed calls in a row before a TensorRT runner is given up."""

_T = TypeVar("_T")


def _shapes(feeds: Mapping[str, np.ndarray]) -> str:
    return ", ".join(f"{k} {list(np.shape(v))}" for k, v in feeds.items())


def skip_failed_decision(stats: RuntimeStats, compute: Callable[[], _T]) -> _T | None:
    """``compute()``, or None when a runner failed (counted as ``decisions_skipped``, logged once per message)."""
    try:
        return compute()
    except RunnerError as exc:
        stats.count("decisions_skipped")
        _once(logging.WARNING, str(exc), "decision skipped, a network failed: %s (each message said once; "
              "counted as decisions_skipped)", exc)
        return None


class FallbackRunner(DelegatingRunner):
    """``primary`` (a TensorRT runner) until it fails ``max_failures`` times in a row; then
    ``fallback()`` (an ONNX Runtime runner of the same network), or :class:`RunError` without one."""

    def __init__(self, primary: Runner, fallback: Callable[[], Runner] | None,
                 max_failures: int = MAX_FAILURES) -> None:
        super().__init__(primary.network, primary.inputs, primary.outputs)
        self.primary = primary
        self.current = primary
        self._fallback = fallback
        self.max_failures = max(1, int(max_failures))
        self.failures = 0  # in a row, on the current runner
        self.failed_calls = 0  # in all
        self.fell_back = False

    _own = ("current", "primary")

    def target(self) -> Runner:
        return self.current

    @property
    def backend(self) -> str:  # type: ignore[override]
        return self.current.backend

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            out = self.current.infer(feeds)
        except RunnerError as exc:
            self.failures += 1
            self.failed_calls += 1
            _once(logging.WARNING, f"{self.network}:{self.current.backend}",
                  "%s: %s failed on inputs %s: %s (said once)", self.network, self.current.description,
                  _shapes(feeds), exc)
            if self.current is not self.primary or self.failures < self.max_failures:
                raise
            self._give_up(exc)
            return self.current.infer(feeds)
        self.failures = 0
        return out

    def _give_up(self, exc: RunnerError) -> None:
        """Switch to the fallback runner, or stop the run when there is none."""
        what = f"{self.network}: {self.primary.description} failed {self.failures} times in a row ({exc})"
        if self._fallback is None:
            raise RunError(f"{what}; stopping: --backend tensorrt never falls back (use --backend auto to fall "
                           "back to ONNX Runtime, or rebuild the plans on this device: edge-mmer convert --tensorrt "
                           "--overwrite-artifacts)") from exc
        replacement = self._fallback()
        replacement.activate()
        try:
            self.primary.deactivate()
        except Exception as release_exc:  # the failed runner's release must not stop the switch
            log.warning("%s: releasing the failed runner: %s", self.network, release_exc)
        self.current = replacement
        self.failures = 0
        self.fell_back = True
        log.warning("%s; running %s on %s from now on", what, self.network, replacement.description)
