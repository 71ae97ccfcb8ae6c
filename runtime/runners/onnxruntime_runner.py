"""ONNX Runtime runner: CPU everywhere, CUDA or TensorRT execution providers where installed."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import Runner, RunnerError, TensorSpec

log = logging.getLogger(__name__)


class OnnxRuntimeRunner(Runner):
    """One ONNX model in one ``onnxruntime.InferenceSession``.

    ``model`` is the path or the bytes of the model (the bytes the bundle reader verified, so the
    file is not read twice); ``providers`` defaults to CPU; ``threads`` sets intra-op threads
    (0 = ONNX Runtime's default, one per core).
    """

    backend = "onnxruntime"

    def __init__(self, network: str, model: bytes | Path, inputs: list[TensorSpec], outputs: list[TensorSpec],
                 providers: Sequence[str | tuple[str, dict[str, Any]]] = ("CPUExecutionProvider",),
                 threads: int = 0) -> None:
        super().__init__(network, inputs, outputs)
        self.model = model
        self.providers = list(providers)
        self.threads = threads
        self.session: Any = None

    @property
    def description(self) -> str:
        used = self.session.get_providers() if self.session is not None else [str(p) for p in self.providers]
        return f"onnxruntime ({', '.join(used)})"

    def _activate(self) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
        so.log_severity_level = 3
        src = self.model if isinstance(self.model, bytes) else str(self.model)
        try:
            self.session = ort.InferenceSession(src, sess_options=so, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise RunnerError(f"{self.network}: ONNX Runtime cannot load the model: {exc}") from exc
        names_in = [i.name for i in self.session.get_inputs()]
        names_out = [o.name for o in self.session.get_outputs()]
        want_in = [s.name for s in self.inputs]
        want_out = [s.name for s in self.outputs]
        if sorted(names_in) != sorted(want_in) or not set(want_out) <= set(names_out):
            raise RunnerError(f"{self.network}: the ONNX model's I/O {names_in} -> {names_out} does not match the "
                              f"manifest's {want_in} -> {want_out}")
        self._out_names = want_out

    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self._out_names, dict(feeds))
        return dict(zip(self._out_names, values, strict=True))

    def _deactivate(self) -> None:
        self.session = None
