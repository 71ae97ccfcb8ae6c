"""The runners conversion measures with: a network's ONNX model on ONNX Runtime's CPU provider, and
the torch network it came from (the reference), both with the manifest's named I/O.

Parity (:mod:`edge_mmer.convert.parity`) and INT8 drift (:mod:`edge_mmer.convert.drift`) run the
runtime's own :class:`~edge_mmer.runtime.runners.onnxruntime_runner.OnnxRuntimeRunner`, so the
figures they record come from the runner a device loads. Torch is imported only by
:func:`torch_references`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from edge_mmer.bundle import Bundle
from edge_mmer.runner import Runner, TensorSpec
from edge_mmer.runtime.runners.onnxruntime_runner import OnnxRuntimeRunner

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

__all__ = ["onnx_runner", "specs", "torch_references"]


def specs(bundle: Bundle, name: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """A network's named inputs and outputs, from the manifest."""
    net = bundle.network(name)
    return net.inputs, net.outputs


def onnx_runner(bundle: Bundle, name: str, model: bytes) -> OnnxRuntimeRunner:
    """``model`` (one of ``name``'s ONNX artifacts) on ONNX Runtime's CPU provider."""
    inputs, outputs = specs(bundle, name)
    return OnnxRuntimeRunner(name, model, inputs, outputs)


def torch_references(bundle: Bundle, modules: Mapping[str, nn.Module]) -> dict[str, Runner]:
    """The loaded torch networks (:func:`edge_mmer.models.from_bundle.load_torch_networks`) as
    :class:`~edge_mmer.models.torch_runner.TorchRunner` s on the CPU."""
    from edge_mmer.models.torch_runner import TorchRunner

    return {name: TorchRunner(name, module, *specs(bundle, name)) for name, module in modules.items()}
