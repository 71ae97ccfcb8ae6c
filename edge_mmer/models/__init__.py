"""The torch networks: speech and face encoders, context and fusion LSTMs (no timm at runtime).

The ONNX export wrappers around them live with the exporter (:mod:`edge_mmer.convert.onnx_export`).
"""

from __future__ import annotations

import logging

from torch import nn

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
    "FusionLSTM",
    "InceptionResNetV2",
    "RecurrentSequenceModel",
    "SpeechEncoder",
    "WeightsError",
    "count_parameters",
    "feature_map_size",
    "read_state_dict",
    "scale_channels",
]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements in ``module`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
