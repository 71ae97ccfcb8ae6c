"""A bundle's torch networks behind the runner contract, so the reference framework runs the same
decision path as ONNX Runtime and TensorRT (:func:`edge_mmer.networks.decide_utterance`).

Encoders map their one input to ``module.features(x)``; step graphs map ``x, h, c`` to
``module.step(x, h, c)`` under the manifest's output names, exactly the graphs the converter exports.
Training side only (torch): ``edge-mmer evaluate`` and conversion parity use it; the runtime never does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from edge_mmer.bundle import Bundle
from edge_mmer.errors import RunnerError
from edge_mmer.models.from_bundle import load_torch_networks
from edge_mmer.runner import Runner, TensorSpec
from edge_mmer.vocab import ENCODERS

__all__ = ["TorchRunner", "torch_runners"]


class TorchRunner(Runner):
    """One torch network of a bundle (eval mode, no autograd) on ``device``."""

    backend = "torch"

    def __init__(self, network: str, module: nn.Module, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                 device: torch.device | str = "cpu") -> None:
        super().__init__(network, inputs, outputs)
        self.module = module
        self.device = torch.device(device)
        self.encoder = network in ENCODERS

    @property
    def description(self) -> str:
        return f"torch ({self.device})"

    def _activate(self) -> None:
        self.module.to(self.device).eval()

    def _deactivate(self) -> None:
        pass

    @torch.no_grad()
    def _infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[s.name])).to(self.device) for s in self.inputs]
        names = [s.name for s in self.outputs]
        if self.encoder:
            outs: tuple[torch.Tensor, ...] = (self.module.features(*args),)  # type: ignore[operator]
        else:
            outs = tuple(self.module.step(*args))  # type: ignore[operator]
        if len(outs) != len(names):
            raise RunnerError(f"{self.network}: the torch module gives {len(outs)} outputs, the manifest names {names}")
        return {name: out.detach().cpu().numpy() for name, out in zip(names, outs, strict=True)}


def torch_runners(bundle: Bundle, device: torch.device | str = "cpu") -> dict[str, Runner]:
    """Every network of ``bundle`` as a :class:`TorchRunner` (weights loaded strictly, sha256 checked)."""
    modules = load_torch_networks(bundle)
    return {name: TorchRunner(name, module, bundle.network(name).inputs, bundle.network(name).outputs, device)
            for name, module in modules.items()}
