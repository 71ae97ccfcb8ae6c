"""Fusion LSTM: spliced (masked) speech + face context features -> LSTM -> FC (paper: 300)."""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from edge_mmer.config import FusionConfig
from edge_mmer.models.context import RecurrentSequenceModel

logger = logging.getLogger(__name__)

__all__ = ["FusionLSTM"]


class FusionLSTM(RecurrentSequenceModel):
    """(B, L, D_speech_masked + D_face_masked) -> LSTM(hidden) -> FC(hidden -> fc) -> tanh = fused
    features (B, L, fc) -> Dropout -> Linear(fc -> n_classes) = logits.

    The FC activation is tanh: the fused features feed an RBF-kernel SVM, and tanh keeps them bounded
    in [-1, 1] like the LSTM outputs (no unbounded or permanently-dead units on small datasets).
    Same ``forward`` / ``step`` / ``zero_state`` contract as :class:`~edge_mmer.models.ContextLSTM`;
    ``step`` returns the FC features as y_t.
    """

    def __init__(self, input_dim: int, n_classes: int, cfg: FusionConfig) -> None:
        super().__init__()
        cfg.validate()
        if input_dim < 1 or n_classes < 1:
            raise ValueError(f"FusionLSTM: input_dim and n_classes must be >= 1, got {input_dim}, {n_classes}")
        self.input_dim = input_dim
        self.n_classes = n_classes
        self.hidden = cfg.hidden
        self.feature_dim = cfg.fc
        self.lstm = nn.LSTM(input_dim, cfg.hidden, batch_first=True)
        self.fc = nn.Linear(cfg.hidden, cfg.fc)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.fc, n_classes)

    def _project(self, out: Tensor) -> tuple[Tensor, Tensor]:
        feats = torch.tanh(self.fc(out))
        return feats, self.head(self.dropout(feats))
