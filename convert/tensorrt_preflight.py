"""The checks before a TensorRT build that need no TensorRT: the build options, and the ONNX
model against them.

:func:`preflight` checks the options, the ONNX inputs against the profile, Q/DQ nodes for INT8 and
FP16 tensors for a strongly typed FP16 build, so a bad request fails the same way on a laptop as on
a Jetson, before :mod:`edge_mmer.convert.tensorrt_build` imports TensorRT. Torch-free and
TensorRT-free; ``onnx`` is imported when it is called (and the ONNX checks skipped without it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_mmer.bundle.shapes import ShapeProfile, ShapeRange
from edge_mmer.errors import BuildOptionsError
from edge_mmer.vocab import PLAN_PRECISIONS as PRECISIONS

log = logging.getLogger(__name__)

__all__ = ["BuildOptionsError", "Dim", "TensorRTBuildOptions", "dla_precision_refusal", "preflight"]

_ONNX_FLOAT16 = 10  # onnx.TensorProto.FLOAT16
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})

Dim = int | str | None


def dla_precision_refusal(precision: str, dla_core: int | None) -> str | None:
    """Why ``precision`` cannot be built for DLA core ``dla_core``; None when it can (or no DLA is asked).

    DLA runs FP16, or INT8 by *implicit* quantization only (a calibration cache on the FP32 network). The
    ``int8`` plans here compile an explicit Q/DQ model, which DLA cannot run: with GPU fallback TensorRT
    silently puts it on the GPU while the record says DLA (NVIDIA/TensorRT#2222: "DLA doesn't support QAT
    yet"; NVIDIA Model-Optimizer #1661: "DLA still only supports IQ"). So the request is refused.
    """
    if dla_core is None:
        return None
    if precision == "fp32":
        return "DLA runs FP16 or INT8 only: use precision 'fp16' with a DLA core"
    if precision == "int8":
        return ("DLA cannot run an INT8 Q/DQ (explicitly quantized) plan: DLA takes INT8 only by implicit "
                "quantization, and with GPU fallback the plan would silently run on the GPU. Use plan precision "
                "'fp16' with a DLA core (the face encoder in FP16 on DLA), or 'int8' without a DLA core (INT8 on "
                "the GPU)")
    return None


@dataclass
class TensorRTBuildOptions:
    """How to build one plan. ``profiles`` takes a :class:`ShapeProfile` or the dict that
    :func:`~edge_mmer.bundle.shapes.derive_profiles` returns; it is stored as a ShapeProfile."""

    precision: str = "fp16"
    workspace_mib: int = 1024
    timing_cache: Path | None = None
    dla_core: int | None = None
    gpu_fallback: bool = True
    strongly_typed: bool = False
    profiles: ShapeProfile | Mapping[str, ShapeRange] | None = None

    def __post_init__(self) -> None:
        if self.profiles is not None and not isinstance(self.profiles, ShapeProfile):
            try:
                self.profiles = ShapeProfile(self.profiles)
            except (ValueError, TypeError) as exc:
                raise BuildOptionsError(str(exc)) from exc
        if self.timing_cache is not None:
            self.timing_cache = Path(self.timing_cache)
        self.validate()

    @property
    def profile(self) -> ShapeProfile | None:
        p = self.profiles
        return p if isinstance(p, ShapeProfile) or p is None else ShapeProfile(p)

    def validate(self) -> None:
        """Raise :class:`BuildOptionsError` for a combination TensorRT would refuse or silently misbuild."""
        if self.precision not in PRECISIONS:
            raise BuildOptionsError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if isinstance(self.workspace_mib, bool) or not isinstance(self.workspace_mib, int) or self.workspace_mib < 1:
            raise BuildOptionsError(f"workspace_mib must be an integer >= 1, got {self.workspace_mib!r}")
        if self.dla_core is None:
            return
        if isinstance(self.dla_core, bool) or not isinstance(self.dla_core, int) or self.dla_core < 0:
            raise BuildOptionsError(f"dla_core must be None or an integer >= 0, got {self.dla_core!r}")
        refusal = dla_precision_refusal(self.precision, self.dla_core)
        if refusal is not None:
            raise BuildOptionsError(f"dla_core {self.dla_core}: {refusal}")
        profile = self.profile
        if profile is not None and not profile.is_static:
            raise BuildOptionsError(
                "DLA needs static shapes (min = opt = max); dynamic in this profile: "
                f"{', '.join(profile.dynamic_inputs)} "
                "(use static_profile_for_dla)"
            )


def _onnx_facts(onnx_path: Path) -> tuple[dict[str, tuple[Dim, ...]], bool, bool] | None:
    """(graph inputs -> dims, has Q/DQ nodes, has FP16 tensors), or None when ``onnx`` is not installed."""
    try:
        import onnx  # optional here: TensorRT's parser does not need it
    except ImportError:
        log.warning("onnx is not installed: skipping the ONNX checks before the TensorRT build")
        return None
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:
        raise BuildOptionsError(f"{onnx_path}: not a readable ONNX model ({exc})") from exc
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs: dict[str, tuple[Dim, ...]] = {}
    for vi in graph.input:
        if vi.name in initializers:
            continue
        dims: list[Dim] = []
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or None)
        inputs[vi.name] = tuple(dims)

    def all_nodes(g: Any) -> Any:
        for node in g.node:
            yield node
            for attr in node.attribute:
                if attr.HasField("g"):
                    yield from all_nodes(attr.g)
                for sub in attr.graphs:
                    yield from all_nodes(sub)

    nodes = list(all_nodes(graph))
    for fn in model.functions:
        nodes.extend(fn.node)
    has_qdq = any(n.op_type in _QDQ_OPS for n in nodes)
    has_fp16 = (
        any(t.data_type == _ONNX_FLOAT16 for t in graph.initializer)
        or any(
            vi.type.tensor_type.elem_type == _ONNX_FLOAT16
            for vi in [*graph.input, *graph.output, *graph.value_info]
        )
        or any(
            n.op_type == "Cast" and any(a.name == "to" and a.i == _ONNX_FLOAT16 for a in n.attribute) for n in nodes
        )
    )
    return inputs, has_qdq, has_fp16


def preflight(onnx_path: Path, options: TensorRTBuildOptions) -> dict[str, tuple[Dim, ...]]:
    """Every check that needs no TensorRT; returns the ONNX graph inputs (empty if ``onnx`` is missing).

    Raises :class:`BuildOptionsError` for: invalid options, a missing file, a profile naming an input
    the model lacks or disagreeing with a fixed dimension, a dynamic input without a profile, INT8
    without Q/DQ nodes, a strongly typed FP16 build of a model without FP16 tensors.
    """
    options.validate()
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise BuildOptionsError(f"{onnx_path}: no such ONNX file")
    facts = _onnx_facts(onnx_path)
    if facts is None:
        return {}
    inputs, has_qdq, has_fp16 = facts
    where = onnx_path.name
    if options.precision == "int8" and not has_qdq:
        raise BuildOptionsError(
            f"{where}: precision 'int8' needs a Q/DQ model (QuantizeLinear/DequantizeLinear nodes); "
            "TensorRT 10 builds here use explicit quantization, no calibrator: quantize the ONNX first"
        )
    if options.strongly_typed and options.precision == "fp16" and not has_fp16:
        raise BuildOptionsError(
            f"{where}: a strongly typed build takes tensor types from the ONNX file and this one has no FP16 "
            "tensors: convert it to FP16 first, or build with strongly_typed=False"
        )
    shapes = options.profile.shapes if options.profile is not None else {}
    for name in shapes:
        if name not in inputs:
            raise BuildOptionsError(
                f"{where}: the profile names input '{name}', the model's inputs are {', '.join(inputs) or 'none'}"
            )
    for name, dims in inputs.items():
        dynamic = [i for i, d in enumerate(dims) if not isinstance(d, int)]
        if name not in shapes:
            if dynamic:
                axes = ", ".join(str(dims[i]) if dims[i] else f"axis {i}" for i in dynamic)
                raise BuildOptionsError(f"{where}: input '{name}' has dynamic axes ({axes}) and no profile")
            continue
        lo, opt, hi = shapes[name]
        if len(lo) != len(dims):
            raise BuildOptionsError(f"{where}: input '{name}' has rank {len(dims)}, its profile rank {len(lo)}")
        for i, d in enumerate(dims):
            if isinstance(d, int) and not lo[i] == opt[i] == hi[i] == d:
                raise BuildOptionsError(
                    f"{where}: input '{name}' axis {i} is fixed at {d}, the profile says {lo[i]}/{opt[i]}/{hi[i]}"
                )
    return inputs
