"""The runner contract (after Polygraphy): activate, infer named arrays, deactivate.

A runner serves one network of a bundle. Its named inputs and outputs come from the manifest, and
every call is checked against them, so a wrong feed fails with the network and the tensor named
instead of deep inside a backend. A :class:`RunnerSet` holds the runners of one bundle by network
and activates them together, all or none. :class:`TensorSpec` is the bundle's view of one named
tensor (:mod:`edge_mmer.bundle.views`), re-exported here.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from edge_mmer.bundle.views import TensorSpec
from edge_mmer.errors import RunnerError

__all__ = ["Runner", "RunnerError", "TensorSpec"]

log = logging.getLogger(__name__)


class Runner(ABC):
    """One network on one backend. Use as a context manager, or call activate / deactivate."""

    backend: str = "?"

    def __init__(self, network: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> None:
        self.network = network
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.active = False

    @property
    def description(self) -> str:
        """Which backend and device runs this network, for logs and profiles."""
        return self.backend

    def activate(self) -> None:
        if not self.active:
            self._activate()
            self.active = True

    def deactivate(self) -> None:
        if self.active:
            self._deactivate()
            self.active = False

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once: ``{input name: array}`` -> ``{output name: array}``."""
        if not self.active:
            raise RunnerError(f"{self.network}: infer() on a runner that is not active (call activate())")
        self.check_feeds(feeds)
        return self._infer(feeds)

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        want = {s.name for s in self.inputs}
        got = set(feeds)
        if want != got:
            raise RunnerError(f"{self.network}: inputs {sorted(got)} do not match the manifest's {sorted(want)}")
        for spec in self.inputs:
            arr = feeds[spec.name]
            if arr.dtype != np.dtype(spec.dtype):
                raise RunnerError(f"{self.network}: input '{spec.name}' has dtype {arr.dtype}, expected {spec.dtype}")
            if arr.ndim != len(spec.shape):
                raise RunnerError(f"{self.network}: input '{spec.name}' has shape {arr.shape}, expected rank "
                                  f"{len(spec.shape)} {list(spec.shape)}")
            for axis, (dim, want_dim) in enumerate(zip(arr.shape, spec.shape, strict=True)):
                if isinstance(want_dim, int) and dim != want_dim:
                    raise RunnerError(f"{self.network}: input '{spec.name}' axis {axis} is {dim}, expected {want_dim} "
                                      f"(shape {list(spec.shape)})")

    def __enter__(self) -> Runner:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    @abstractmethod
    def _activate(self) -> None: ...

    @abstractmethod
    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _deactivate(self) -> None: ...


_Set = TypeVar("_Set", bound="RunnerSet")


@dataclass
class RunnerSet:
    """Runners by network name. :meth:`activate` loads them all or none (one that fails deactivates
    those already loaded); a context manager that deactivates them all on exit."""

    runners: dict[str, Runner]

    def __getitem__(self, network: str) -> Runner:
        return self.runners[network]

    def activate(self) -> None:
        done: list[Runner] = []
        try:
            for runner in self.runners.values():
                runner.activate()
                done.append(runner)
        except BaseException:
            for runner in done:
                runner.deactivate()
            raise

    def deactivate(self) -> None:
        for runner in self.runners.values():
            runner.deactivate()

    def descriptions(self) -> Mapping[str, str]:
        """Network -> which backend and device runs it."""
        return {n: r.description for n, r in self.runners.items()}

    def __enter__(self: _Set) -> _Set:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()
