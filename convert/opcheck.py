"""Will TensorRT's ONNX parser take this graph? Operators, opset and LSTM attributes, per release.

The operator lists are ``data/onnx_tensorrt_ops.json`` (onnx-tensorrt's docs/operators.md at
8.6, 10.1/10.3 and 10.15); the LSTM rules are TensorRT's importer limits (reference/tensorrt.md):
``layout`` 0, ``input_forget`` 0, the same activations in both directions. A pass here means the
parser should accept the graph; only a build on the device proves it (per-op restrictions remain).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from typing import Any

import onnx
from onnx import helper

from edge_mmer.errors import UnsupportedOpError

log = logging.getLogger(__name__)

__all__ = ["TENSORRT_RELEASES", "UnsupportedOpError", "check_tensorrt_ops", "supported_ops"]

TENSORRT_RELEASES = ("8.6", "10.3", "10.15")
_DEFAULT_DOMAINS = ("", "ai.onnx")


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    text = resources.files("edge_mmer.convert").joinpath("data/onnx_tensorrt_ops.json").read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text)["tensorrt"]
    return table


def supported_ops(trt_version: str) -> tuple[frozenset[str], int, int]:
    """(operator names, lowest opset, highest opset) for a TensorRT release ('8.6', '10.3', '10.15')."""
    table = _table()
    if trt_version not in table:
        raise ValueError(f"unknown TensorRT release {trt_version!r} (known: {', '.join(sorted(table))})")
    entry = table[trt_version]
    return frozenset(entry["ops"]), int(entry.get("opset_min", 1)), int(entry["opset_max"])


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node, subgraphs (If / Loop / Scan bodies) included."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _nodes(sub)


def _label(node: onnx.NodeProto) -> str:
    return f"node {node.name or '<unnamed>'!r} ({node.op_type})"


def _check_lstm(node: onnx.NodeProto, release: str) -> None:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    for key in ("layout", "input_forget"):
        if int(attrs.get(key, 0)) != 0:
            raise UnsupportedOpError(
                f"{_label(node)}: LSTM attribute {key}={attrs[key]} is not supported by TensorRT {release}'s "
                f"ONNX parser ({key} must be 0)", node.name, node.op_type, release)
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else str(direction)
    acts = [a.decode() if isinstance(a, bytes) else str(a) for a in attrs.get("activations", [])]
    if direction == "bidirectional" and acts and acts[: len(acts) // 2] != acts[len(acts) // 2 :]:
        raise UnsupportedOpError(
            f"{_label(node)}: LSTM activations differ between directions ({acts}); TensorRT {release}'s "
            "ONNX parser needs the same activations in both directions", node.name, node.op_type, release)


def check_tensorrt_ops(model: onnx.ModelProto, trt_version: str) -> None:
    """Raise :class:`UnsupportedOpError` naming the node (name and op type) and the release for the
    first operator, opset or LSTM attribute that TensorRT ``trt_version``'s ONNX parser does not take."""
    ops, opset_min, opset_max = supported_ops(trt_version)
    for imp in model.opset_import:
        if imp.domain in _DEFAULT_DOMAINS and not opset_min <= imp.version <= opset_max:
            first = next((n for n in _nodes(model.graph) if n.domain in _DEFAULT_DOMAINS), None)
            at = f", first {_label(first)}" if first is not None else ""
            raise UnsupportedOpError(
                f"graph {model.graph.name!r}{at}: ONNX opset {imp.version} is outside TensorRT {trt_version}'s "
                f"supported range {opset_min}-{opset_max} (export at opset 17 for every JetPack 6 release)",
                first.name if first is not None else None, first.op_type if first is not None else None, trt_version)
    for node in _nodes(model.graph):
        if node.domain not in _DEFAULT_DOMAINS:
            raise UnsupportedOpError(
                f"{_label(node)}: operator domain {node.domain!r} is not ONNX's; TensorRT {trt_version} would need "
                "a plugin for it", node.name, node.op_type, trt_version)
        if node.op_type not in ops:
            raise UnsupportedOpError(
                f"{_label(node)}: operator {node.op_type} is not supported by TensorRT {trt_version}'s ONNX parser",
                node.name, node.op_type, trt_version)
        if node.op_type == "LSTM":
            _check_lstm(node, trt_version)
    log.debug("graph %r: every operator is in TensorRT %s's list", model.graph.name, trt_version)
