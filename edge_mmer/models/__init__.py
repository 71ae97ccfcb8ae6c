"""The torch networks: speech and face encoders, context and fusion LSTMs (no timm at runtime)."""

from __future__ import annotations

import logging

from torch import Tensor, nn

from edge_mmer.models.context import ContextLSTM, RecurrentSequenceModel
from edge_mmer.models.face import FaceEncoder, WeightsError, read_state_dict
from edge_mmer.models.fusion import FusionLSTM
from edge_mmer.models.inception_resnet_v2 import (
    MIN_INPUT_SIZE,
    InceptionResNetV2,
    feature_map_size,
    scale_channels,
)
from edge_mmer.models.speech import SpeechEncoder

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_INPUT_SIZE",
    "ContextLSTM",
    "FaceEncoder",
    "FeaturesGraph",
    "FusionLSTM",
    "InceptionResNetV2",
    "RecurrentSequenceModel",
    "SpeechEncoder",
    "StepGraph",
    "WeightsError",
    "count_parameters",
    "feature_map_size",
    "read_state_dict",
    "scale_channels",
]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements in ``module`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


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
