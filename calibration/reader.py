"""An ONNX Runtime ``CalibrationDataReader`` over one network's calibration samples.

``get_next()`` returns ``{input_name: array}`` per run, then None; ``rewind()`` starts again (the
quantizer and a TensorRT calibration path can both walk the same samples).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edge_mmer.calibration.sets import CalibrationSet

log = logging.getLogger(__name__)

__all__ = ["CalibrationReader"]


class CalibrationReader(CalibrationDataReader):
    """Feeds ``samples`` (one ``{input_name: float32 array}`` per run) in order."""

    def __init__(self, samples: Sequence[dict[str, np.ndarray]], network: str = "") -> None:
        self.network = network
        self._samples = [{k: np.ascontiguousarray(v, np.float32) for k, v in s.items()} for s in samples]
        self._next = 0

    @classmethod
    def from_set(cls, cs: CalibrationSet, network: str) -> CalibrationReader:
        samples = cs.samples(network)
        if not samples:
            raise ValueError(f"calibration set has no samples for {network!r}")
        return cls(samples, network)

    def __len__(self) -> int:
        return len(self._samples)

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._samples):
            return None
        self._next += 1
        return self._samples[self._next - 1]

    def rewind(self) -> None:
        self._next = 0
