"""A tap around a runner: it runs the wrapped runner and keeps a copy of what went in (and, when
asked, what came out).

One wrapper serves every "what did this network see?" question: the INT8 calibration set recorded
on the device (``edge-mmer calibrate record``) and the one built from a dataset (each network's real
inputs on the decision path), and INT8 drift, which replays the FP32 networks' feeds through the
INT8 ones and compares their outputs. Because it is a :class:`~edge_mmer.runner.Runner`, the code
being observed (the runtime loop, :func:`edge_mmer.networks.decide_utterance`) runs unchanged.
Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from edge_mmer.runner import Runner

log = logging.getLogger(__name__)

__all__ = ["TapRunner"]


class TapRunner(Runner):
    """Runs ``inner``; keeps float32 copies of the first ``limit`` feeds (all with None) in
    :attr:`feeds`, and copies of their outputs in :attr:`results` when ``keep_outputs``. ``on_sample`` is
    called after each kept feed, before it runs."""

    def __init__(self, inner: Runner, limit: int | None = None, on_sample: Callable[[], None] | None = None,
                 keep_outputs: bool = False) -> None:
        super().__init__(inner.network, inner.inputs, inner.outputs)
        self.backend = inner.backend
        self.inner = inner
        self.limit = limit
        self.on_sample = on_sample
        self.keep_outputs = keep_outputs
        self.feeds: list[dict[str, np.ndarray]] = []
        self.results: list[dict[str, np.ndarray]] = []

    @property
    def description(self) -> str:
        return f"{self.inner.description} (recording inputs)"

    @property
    def recorded(self) -> int:
        """Feeds kept so far."""
        return len(self.feeds)

    def arrays(self) -> dict[str, list[np.ndarray]]:
        """The kept feeds by input name: ``{input name: [array per run]}`` (a calibration set's layout)."""
        return {name: [feed[name] for feed in self.feeds] for name in self.feeds[0]} if self.feeds else {}

    def _activate(self) -> None:
        self.inner.activate()

    def _deactivate(self) -> None:
        self.inner.deactivate()

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        keep = self.limit is None or self.recorded < self.limit
        if keep:
            self.feeds.append({name: np.array(arr, dtype=np.float32, copy=True) for name, arr in feeds.items()})
            if self.on_sample is not None:
                self.on_sample()
        out = self.inner.infer(feeds)
        if keep and self.keep_outputs:
            self.results.append({name: np.array(arr, copy=True) for name, arr in out.items()})
        return out
