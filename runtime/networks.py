"""The networks behind their runners and the one decision path (defined in :mod:`edge_mmer.networks`)."""

from __future__ import annotations

from edge_mmer.networks import (
    Networks,
    StepLSTM,
    decide,
    decide_utterance,
    face_only_channels,
    utterance_channels,
)
from edge_mmer.vocab import NETWORKS

__all__ = ["NETWORKS", "Networks", "StepLSTM", "decide", "decide_utterance", "face_only_channels",
           "utterance_channels"]
