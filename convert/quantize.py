"""One ONNX model -> its INT8 Q/DQ graph, with ONNX Runtime's static quantizer.

A file-to-file tool: it knows nothing of bundles. :mod:`edge_mmer.convert.int8` runs it for each
quantizable network of a bundle and records the result (with calibration and drift). Two flavours
of the same Q/DQ graph, calibrated on the same data:

- ``int8-cpu``: activations QUInt8 (asymmetric), weights QInt8 per channel. ONNX Runtime's fast
  form on x86 (VNNI) and ARM CPUs.
- ``int8-trt``: activations and weights QInt8, symmetric (zero points 0), per-channel weights
  (axis 0), per-tensor activations, no INT32 bias quantization: TensorRT's Q/DQ rules
  (``/work/shared/reference/tensorrt.md``), and TensorRT's recommended placement: the inputs of
  Conv / Gemm / MatMul quantized, not their outputs. All checked on the produced graph
  (:func:`check_tensorrt_qdq`, :func:`quantized_weighted_outputs`); a violation raises.

Only ``Conv``, ``Gemm`` and ``MatMul`` are quantized; LSTMs stay float (ONNX Runtime's quantizer has
no LSTM Q/DQ entry and TensorRT's LSTM takes FP32/FP16 only). Torch-free; onnxruntime and onnx are
imported when called.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_mmer.errors import QuantizeError
from edge_mmer.provenance import version
from edge_mmer.vocab import ArtifactKind

if TYPE_CHECKING:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader

log = logging.getLogger(__name__)

__all__ = [
    "CALIBRATE_METHODS",
    "INT8_FLAVOURS",
    "QUANTIZED_OP_TYPES",
    "QuantizeError",
    "check_tensorrt_qdq",
    "count_quantized_ops",
    "quantize_int8",
]

INT8_FLAVOURS = (ArtifactKind.INT8_CPU, ArtifactKind.INT8_TRT)
QUANTIZED_OP_TYPES = ("Conv", "Gemm", "MatMul")
CALIBRATE_METHODS = ("minmax", "entropy", "percentile")


def _initializers(model: onnx.ModelProto) -> dict[str, Any]:
    return {t.name: t for t in model.graph.initializer}


def count_quantized_ops(model: onnx.ModelProto) -> dict[str, int]:
    """Nodes of a quantizable type whose first (activation) input comes from a DequantizeLinear,
    by op type; plus the Q/DQ node counts."""
    dq_outputs = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    counts: Counter[str] = Counter()
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OP_TYPES and node.input and node.input[0] in dq_outputs:
            counts[node.op_type] += 1
    out = {op: counts.get(op, 0) for op in QUANTIZED_OP_TYPES}
    out["QuantizeLinear"] = sum(n.op_type == "QuantizeLinear" for n in model.graph.node)
    out["DequantizeLinear"] = sum(n.op_type == "DequantizeLinear" for n in model.graph.node)
    return out


def check_tensorrt_qdq(model: onnx.ModelProto) -> list[str]:
    """TensorRT's Q/DQ rules on ``model``: every Q/DQ zero point is an INT8 zero (scalar or per
    channel), no INT32 (bias) DequantizeLinear, positive scales, weight scales per channel on axis 0
    (one per output channel), one scale per activation. Returns the violations (empty when it complies)."""
    from onnx import TensorProto, numpy_helper

    inits = _initializers(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    problems: list[str] = []
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if len(node.input) < 3 or not node.input[2]:
            if node.op_type == "DequantizeLinear" and node.input[0] in inits:
                if inits[node.input[0]].data_type != TensorProto.INT8:
                    problems.append(f"{node.name}: "
                                    f"dequantizes a {TensorProto.DataType.Name(inits[node.input[0]].data_type)} tensor")
                continue
            problems.append(f"{node.name}: no zero point (defaults to UINT8)")
            continue
        zp_name = node.input[2]
        zp = inits.get(zp_name)
        if zp is None:
            src = producers.get(zp_name)
            problems.append(f"{node.name}: zero point {zp_name} is not a constant initializer"
                            + (f" (made by {src.op_type})" if src is not None else ""))
            continue
        if zp.data_type == TensorProto.INT32:
            problems.append(f"{node.name}: INT32 {node.op_type} (bias quantization)")
            continue
        if zp.data_type != TensorProto.INT8:
            problems.append(f"{node.name}: zero point type {TensorProto.DataType.Name(zp.data_type)}, expected INT8")
            continue
        if numpy_helper.to_array(zp).any():
            problems.append(f"{node.name}: non-zero zero point")
            continue
        problems += _scale_problems(node, inits, weight=node.input[0] in inits)
    return problems


def quantized_weighted_outputs(model: onnx.ModelProto) -> list[str]:
    """Conv / Gemm / MatMul outputs that feed a QuantizeLinear: against TensorRT's recommended Q/DQ
    placement (quantize the inputs of weighted ops; their outputs stay in higher precision)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    out = []
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear":
            continue
        src = producers.get(node.input[0])
        if src is not None and src.op_type in QUANTIZED_OP_TYPES:
            out.append(f"{node.name}: quantizes the output of {src.op_type} {src.name}")
    return out


def _scale_problems(node: Any, inits: dict[str, Any], weight: bool) -> list[str]:
    """Scales positive; per-channel (axis 0, one scale per output channel) for weights, one scale for activations."""
    from onnx import numpy_helper

    scale = inits.get(node.input[1]) if len(node.input) > 1 else None
    if scale is None:
        return [f"{node.name}: scale {node.input[1] if len(node.input) > 1 else '?'} is not a constant initializer"]
    values = numpy_helper.to_array(scale)
    problems = [] if (values > 0).all() else [f"{node.name}: a scale <= 0"]
    if not weight:
        if values.size != 1:
            problems.append(f"{node.name}: {values.size} activation scales, TensorRT wants one (per tensor)")
        return problems
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    tensor = inits[node.input[0]]
    if values.size > 1 and (axis != 0 or values.size != tensor.dims[0]):
        problems.append(f"{node.name}: per-channel weight scales on axis {axis} ({values.size} of them), "
                        f"expected axis 0 with {tensor.dims[0]}")
    return problems


def _activation_types(model: onnx.ModelProto) -> list[str]:
    """The element types of non-constant QuantizeLinear outputs (activations)."""
    from onnx import TensorProto

    inits = _initializers(model)
    types: set[str] = set()
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits and len(node.input) > 2:
            zp = inits.get(node.input[2])
            if zp is not None:
                types.add(TensorProto.DataType.Name(zp.data_type))
    return sorted(types)


def _preprocess(src: Path, dst: Path) -> str:
    """``quant_pre_process`` (symbolic shape inference + ORT optimisation); on failure (seen with
    some LSTM graphs) fall back to the model as is. Returns what was done."""
    from onnxruntime.quantization import quant_pre_process

    try:
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=False)
        return "quant_pre_process"
    except Exception as exc:  # pre-processing is an optimisation, not a requirement
        try:
            quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
            log.info("%s: quant_pre_process without symbolic shape inference (%s)", src.name, exc)
            return f"quant_pre_process (symbolic shape inference skipped: {type(exc).__name__})"
        except Exception as exc2:
            log.info("%s: quant_pre_process failed (%s); quantizing the model as exported", src.name, exc2)
            shutil.copyfile(src, dst)
            return f"skipped ({type(exc2).__name__}: {str(exc2)[:160]})"


def quantize_int8(
    fp32_onnx: Path,
    out_path: Path,
    flavour: str,
    reader: CalibrationDataReader,
    *,
    calibrate_method: str = "minmax",
    per_channel: bool = True,
) -> dict[str, Any]:
    """Quantize ``fp32_onnx`` into a Q/DQ ONNX model at ``out_path`` (static, calibrated with
    ``reader``). ``flavour`` is ``int8-cpu`` or ``int8-trt`` (see the module docstring);
    ``calibrate_method`` ``minmax`` | ``entropy`` | ``percentile``. Returns the facts to record:
    flavour, activation/weight types, symmetric, per_channel, calibrate_method, quantized op counts
    by type, pre-processing done and the ONNX Runtime version. Raises :class:`QuantizeError`."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if flavour not in INT8_FLAVOURS:
        raise QuantizeError(f"INT8 flavour {flavour!r}: expected one of {', '.join(INT8_FLAVOURS)}")
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if calibrate_method not in methods:
        raise QuantizeError(f"calibration method {calibrate_method!r}: expected one of {', '.join(methods)}")
    fp32_onnx, out_path = Path(fp32_onnx), Path(out_path)
    trt = flavour == ArtifactKind.INT8_TRT
    activation_type = QuantType.QInt8 if trt else QuantType.QUInt8
    extra: dict[str, Any] = (
        {"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
         # TensorRT's placement: quantize the inputs of weighted ops, not their outputs (ORT's QDQConv /
         # QDQGemm would add Conv -> Q -> DQ -> Relu: a second scale and a separate requantize layer)
         "OpTypesToExcludeOutputQuantization": list(QUANTIZED_OP_TYPES)} if trt else {}
    )
    with tempfile.TemporaryDirectory(prefix="edge-mmer-quant-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        preprocess = _preprocess(fp32_onnx, pre)
        src = onnx.load(str(pre))
        if not any(n.op_type in QUANTIZED_OP_TYPES for n in src.graph.node):
            raise QuantizeError(f"{fp32_onnx.name}: nothing to quantize (no {'/'.join(QUANTIZED_OP_TYPES)} node)")
        tmp_out = Path(tmp) / "q.onnx"
        try:
            quantize_static(
                str(pre), str(tmp_out), reader,
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OP_TYPES),
                per_channel=per_channel,
                reduce_range=False,
                activation_type=activation_type,
                weight_type=QuantType.QInt8,
                calibrate_method=methods[calibrate_method],
                extra_options=extra,
            )
        except Exception as exc:
            raise QuantizeError(f"{fp32_onnx.name} ({flavour}): ONNX Runtime quantization failed: {exc}") from exc
        model = onnx.load(str(tmp_out))
    onnx.checker.check_model(model)
    if trt:
        problems = check_tensorrt_qdq(model) + quantized_weighted_outputs(model)
        if problems:
            shown = "; ".join(problems[:5]) + (f"; ... ({len(problems)} in all)" if len(problems) > 5 else "")
            raise QuantizeError(f"{fp32_onnx.name}: the int8-trt graph breaks TensorRT's Q/DQ rules: {shown}")
    counts = count_quantized_ops(model)
    if not any(counts[op] for op in QUANTIZED_OP_TYPES):
        raise QuantizeError(f"{fp32_onnx.name} ({flavour}): "
                            f"the quantizer quantized no {'/'.join(QUANTIZED_OP_TYPES)} node")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_path))
    facts: dict[str, Any] = {
        "flavour": flavour,
        "format": "onnx-qdq",
        "activation_type": "int8" if trt else "uint8",
        "weight_type": "int8",
        "activation_symmetric": trt,
        "weight_symmetric": True,  # ORT default for QInt8 weights
        "per_channel": per_channel,
        "bias_quantized": not trt,
        "reduce_range": False,
        "calibrate_method": calibrate_method,
        "op_types_to_quantize": list(QUANTIZED_OP_TYPES),
        "quantized_ops": counts,
        "activation_qdq_types": _activation_types(model),
        "preprocess": preprocess,
        "onnxruntime": version("onnxruntime"),
    }
    log.info("%s -> %s (%s): %s", fp32_onnx.name, out_path.name, flavour,
             ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return facts
