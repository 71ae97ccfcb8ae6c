"""Bundle networks -> ONNX (opset 17, legacy exporter), onnxslim clean-up, FP16 conversion.

Names and dynamic axes come from the manifest's ``inputs``/``outputs``: a string dimension
(``"time"``, ``"batch"``) is a dynamic axis of that name. Encoders are exported through
:class:`FeaturesGraph`, the context and fusion LSTMs as step graphs
``(x, h, c) -> (y | features, h_out, c_out)`` through :class:`StepGraph`: the wrappers say which
method of the torch network becomes the graph.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from edge_mmer.bundle.views import NetworkSpec, TensorSpec
from edge_mmer.errors import ExportError
from edge_mmer.models import FaceEncoder, RecurrentSequenceModel, SpeechEncoder

log = logging.getLogger(__name__)

__all__ = [
    "EXAMPLE_DIMS",
    "OPSET",
    "ExportError",
    "ExportedGraph",
    "FeaturesGraph",
    "StepGraph",
    "check_exported",
    "dynamic_axes",
    "export_network",
    "ort_session",
    "slim",
    "to_fp16",
    "toposort",
]

OPSET = 17
# sizes used for the export's example inputs along named dynamic axes
EXAMPLE_DIMS = {"time": 64, "batch": 2}
_RECURRENT = ("ContextLSTM", "FusionLSTM")
_WITH_LSTM = ("SpeechEncoder", *_RECURRENT)


class FeaturesGraph(nn.Module):
    """Export wrapper: ``forward(x) = model.features(x)`` (SpeechEncoder, FaceEncoder).

    The wrapper takes the model's train/eval mode, so ``torch.onnx.export`` (which restores the
    wrapper's mode afterwards) leaves an eval-mode model in eval mode."""

    def __init__(self, model: SpeechEncoder | FaceEncoder) -> None:
        super().__init__()
        self.model = model
        self.train(model.training)

    def forward(self, x: Tensor) -> Tensor:
        return self.model.features(x)


class StepGraph(nn.Module):
    """Export wrapper: ``forward(x_t, h, c) = model.step(x_t, h, c)`` (ContextLSTM, FusionLSTM);
    x_t (B, D), h/c (B, hidden) -> y_t (B, feature_dim), h', c'. Takes the model's train/eval mode."""

    def __init__(self, model: RecurrentSequenceModel) -> None:
        super().__init__()
        self.model = model
        self.train(model.training)

    def forward(self, x_t: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.model.step(x_t, h, c)


@dataclass
class ExportedGraph:
    """One network's ONNX model and the facts recorded beside it."""

    name: str
    model: onnx.ModelProto
    dynamic_axes: dict[str, dict[int, str]]
    input_names: list[str]
    output_names: list[str]

    def serialize(self) -> bytes:
        data: bytes = self.model.SerializeToString()
        return data


def dynamic_axes(net: NetworkSpec) -> dict[str, dict[int, str]]:
    """``{io name: {axis: axis name}}`` for every string dimension of the manifest's I/O."""
    out: dict[str, dict[int, str]] = {}
    for io_spec in (*net.inputs, *net.outputs):
        axes = {i: d for i, d in enumerate(io_spec.shape) if isinstance(d, str)}
        if axes:
            out[io_spec.name] = axes
    return out


def _example(io_spec: TensorSpec, dims: dict[str, int]) -> torch.Tensor:
    shape = [d if isinstance(d, int) else dims.get(d, 2) for d in io_spec.shape]
    gen = torch.Generator().manual_seed(0)
    return torch.randn(*shape, generator=gen, dtype=getattr(torch, io_spec.dtype))


def export_network(name: str, module: nn.Module, net: NetworkSpec, opset: int = OPSET) -> ExportedGraph:
    """Export ``module`` (eval mode, CPU) as its manifest entry ``net`` describes; checked and slimmed."""
    cls = net.network_class
    module = module.eval().cpu()
    wrapper: nn.Module = StepGraph(module) if cls in _RECURRENT else FeaturesGraph(module)  # type: ignore[arg-type]
    inputs = tuple(_example(io_spec, EXAMPLE_DIMS) for io_spec in net.inputs)
    input_names = list(net.input_names)
    output_names = list(net.output_names)
    axes = dynamic_axes(net)
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*batch_size other than 1.*")
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(
            wrapper, inputs, buf,  # type: ignore[arg-type]  # the legacy exporter takes a file object
            dynamo=False, opset_version=opset, input_names=input_names,
            output_names=output_names, dynamic_axes=axes or None, do_constant_folding=True,
        )
    model = onnx.load_from_string(buf.getvalue())
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{name}: exported ONNX graph is invalid: {exc}") from exc
    model = slim(model, name)
    model.doc_string = f"edge-mmer {name} ({cls})"
    graph = ExportedGraph(name, model, axes, input_names, output_names)
    check_exported(graph, net)
    log.info("%s: exported (%d nodes, opset %d)", name, len(model.graph.node), opset)
    return graph


def slim(model: onnx.ModelProto, name: str = "model") -> onnx.ModelProto:
    """onnxslim clean-up (constant folding, dead nodes); the result is checked again."""
    import onnxslim

    slimmed = onnxslim.slim(model)
    if not isinstance(slimmed, onnx.ModelProto):
        raise ExportError(f"{name}: onnxslim returned {type(slimmed).__name__}, not a model")
    try:
        onnx.checker.check_model(slimmed, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{name}: ONNX graph invalid after onnxslim: {exc}") from exc
    return slimmed


def ort_session(model: onnx.ModelProto | bytes) -> Any:
    """An ONNX Runtime CPU session (no graph optimisation surprises: ORT_ENABLE_ALL, 1 inter-op thread)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


def check_exported(graph: ExportedGraph, net: NetworkSpec) -> None:
    """Structural checks: named I/O as in the manifest, an ``LSTM`` node where the network has an
    LSTM, and a speech encoder that runs at two different time lengths."""
    model = graph.model
    got_in = [i.name for i in model.graph.input]
    got_out = [o.name for o in model.graph.output]
    if got_in != graph.input_names or got_out != graph.output_names:
        raise ExportError(f"{graph.name}: ONNX I/O {got_in} -> {got_out} differ from the manifest's "
                          f"{graph.input_names} -> {graph.output_names}")
    if net.network_class in _WITH_LSTM and not any(n.op_type == "LSTM" for n in model.graph.node):
        raise ExportError(f"{graph.name}: no LSTM node in the exported graph (the LSTM was unrolled or lost)")
    if "time" in graph.dynamic_axes.get(graph.input_names[0], {}).values():
        check_time_lengths(graph, net)


def check_time_lengths(graph: ExportedGraph, net: NetworkSpec, lengths: tuple[int, ...] = (37, 211)) -> None:
    """The graph runs at each time length and its output shapes follow the manifest."""
    sess = ort_session(graph.model)
    io_spec = net.inputs[0]
    out_spec = net.outputs[0]
    for t in lengths:
        x = _example(io_spec, {**EXAMPLE_DIMS, "time": t}).numpy()
        try:
            (y,) = sess.run([out_spec.name], {io_spec.name: x})
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ExportError(f"{graph.name}: does not run in ONNX Runtime at time length {t}: {exc}") from exc
        want = [d if isinstance(d, int) else x.shape[io_spec.shape.index(d)] for d in out_spec.shape]
        if list(y.shape) != want or not np.isfinite(y).all():
            raise ExportError(f"{graph.name}: at time length {t} the output is {y.shape} (want {want}) or not finite")


def toposort(graph: onnx.GraphProto) -> None:
    """Sort ``graph.node`` topologically in place (stable: keeps the given order where it can)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        rest = []
        for node in pending:
            if all(i in available for i in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ExportError(f"graph {graph.name!r}: a cycle or a missing input at node {rest[0].name!r}")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def to_fp16(model: onnx.ModelProto, name: str = "model") -> tuple[onnx.ModelProto, list[str]]:
    """FP16 weights and activations with float32 I/O (``keep_io_types``), and the op types kept in
    float32. LSTMs go to FP16 too when ONNX Runtime's CPU kernel takes it (1.32 does); otherwise
    (an older ONNX Runtime) they are kept float32 (``op_block_list``), which TensorRT also accepts."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    def convert(block: list[str]) -> onnx.ModelProto:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "values out of fp16 range" notes
            half = convert_float_to_float16(model, keep_io_types=True, op_block_list=block or None)
        toposort(half.graph)  # the converter appends its input casts at the end; TensorRT's parser wants order
        try:
            onnx.checker.check_model(half, full_check=True)
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"{name}: FP16 ONNX graph is invalid: {exc}") from exc
        typed: onnx.ModelProto = half
        return typed

    half = convert([])
    if any(n.op_type == "LSTM" for n in model.graph.node):
        try:
            _smoke_run(half)
        except Exception as exc:  # onnxruntime raises its own exception types
            log.info("%s: FP16 LSTM does not run in this ONNX Runtime (%s): keeping LSTM in float32", name, exc)
            half = convert(["LSTM"])
            _smoke_run(half)
            return half, ["LSTM"]
    return half, []


def _smoke_run(model: onnx.ModelProto) -> None:
    sess = ort_session(model)
    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) else EXAMPLE_DIMS.get(str(d), 2) for d in inp.shape]
        feeds[inp.name] = np.zeros(shape, dtype=np.float32)
    sess.run(None, feeds)
