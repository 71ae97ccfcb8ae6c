"""Recurrent models over a session's utterance sequence: per-modality context and fusion LSTMs.

Both are unidirectional, so running a session whole, in chunks with the state carried, or one
utterance at a time (:meth:`step`, the exported graph ``(x_t, h, c) -> (y_t, h', c')``) gives the
same outputs: the offline and streaming paths are one computation. Padded sessions need no packing
for training: padding at the end of a sequence cannot change earlier outputs; mask the loss instead.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from edge_mmer.config import ContextConfig

logger = logging.getLogger(__name__)

__all__ = ["ContextLSTM", "RecurrentSequenceModel"]

State = tuple[Tensor, Tensor]


class RecurrentSequenceModel(nn.Module):
    """Shared sequence / step / state contract of :class:`ContextLSTM` and ``FusionLSTM``.

    Subclasses define ``self.lstm`` (one layer, unidirectional, batch_first), ``self.hidden`` and
    :meth:`_project` (LSTM outputs -> (features, logits)).
    """

    lstm: nn.LSTM
    hidden: int
    feature_dim: int

    def _project(self, out: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def zero_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> State:
        """A fresh (h, c), each (1, batch, hidden) — the start of a session."""
        p = next(self.parameters())
        shape = (1, batch, self.hidden)
        return (
            torch.zeros(shape, device=device or p.device, dtype=dtype or p.dtype),
            torch.zeros(shape, device=device or p.device, dtype=dtype or p.dtype),
        )

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, Tensor, State]:
        """x (B, L, D), optional (h, c) each (1, B, hidden) -> (features (B, L, feature_dim),
        logits (B, L, n_classes), (h, c) after the last step)."""
        out, (h, c) = self.lstm(x, state)
        feats, logits = self._project(out)
        return feats, logits, (h, c)

    def step(self, x_t: Tensor, h: Tensor | None = None, c: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """One utterance: x_t (B, D), h and c (B, hidden) (zeros when omitted) ->
        (y_t (B, feature_dim), h' (B, hidden), c' (B, hidden)). This is the exported step graph."""
        if h is None or c is None:
            h0, c0 = self.zero_state(x_t.shape[0], device=x_t.device, dtype=x_t.dtype)
            h = h0[0] if h is None else h
            c = c0[0] if c is None else c
        out, (h1, c1) = self.lstm(x_t.unsqueeze(1), (h.unsqueeze(0), c.unsqueeze(0)))
        feats, _ = self._project(out)
        return feats[:, 0], h1[0], c1[0]


class ContextLSTM(RecurrentSequenceModel):
    """Intra-modal context: LSTM(input_dim -> hidden) over utterance features; features = the LSTM
    outputs (B, L, hidden); logits = Linear(Dropout(outputs)) (the head trains the LSTM)."""

    def __init__(self, input_dim: int, n_classes: int, cfg: ContextConfig) -> None:
        super().__init__()
        cfg.validate()
        if input_dim < 1 or n_classes < 1:
            raise ValueError(f"ContextLSTM: input_dim and n_classes must be >= 1, got {input_dim}, {n_classes}")
        self.input_dim = input_dim
        self.n_classes = n_classes
        self.hidden = cfg.hidden
        self.feature_dim = cfg.hidden
        self.lstm = nn.LSTM(input_dim, cfg.hidden, batch_first=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, n_classes)

    def _project(self, out: Tensor) -> tuple[Tensor, Tensor]:
        return out, self.head(self.dropout(out))
