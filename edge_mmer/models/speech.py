"""CNN-LSTM speech encoder (paper: 2 conv layers 32x3 ReLU, max-pool, LSTM 256, dense head)."""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from edge_mmer.config import SpeechEncoderConfig

logger = logging.getLogger(__name__)

__all__ = ["SpeechEncoder"]


class SpeechEncoder(nn.Module):
    """Log-mel utterance -> fixed-size speech feature (the LSTM's last hidden state) + logits.

    Graph: (B, T, n_mels) -> Conv1d(n_mels->C, k, padding k//2) -> ReLU -> Conv1d(C->C, k, no padding)
    -> ReLU -> MaxPool1d(pool) -> LSTM(C->H, batch_first) -> h_T (B, H) = feature -> Dropout -> Linear
    -> logits (B, n_classes).

    The time axis shrinks to ``T' = (T - k + 1) // pool`` LSTM steps (:meth:`output_lengths`); an
    input needs ``T >= k - 1 + pool`` frames (4 for the presets, i.e. 40 ms of 10 ms hops).

    Dropout: the paper's Keras "recurrent dropout 0.2" (dropout on the recurrent state inside the
    cell) has no cuDNN or ONNX ``LSTM`` equivalent, so ``cfg.dropout`` is applied to the LSTM output
    (h_T) before the dense head instead. The returned feature is taken before that dropout.

    Padded batches: pass ``lengths`` (valid input frames per item). Frames past each length are
    zeroed and the LSTM runs on a packed sequence, so an item's feature does not depend on the
    padding or the batch. Without ``lengths`` (inference, export) the plain LSTM runs over all
    frames: use it for a batch of one or of equal-length inputs. The export path never packs.
    """

    input_mean: Tensor
    input_std: Tensor

    def __init__(self, n_mels: int, n_classes: int, cfg: SpeechEncoderConfig) -> None:
        super().__init__()
        cfg.validate()
        if n_mels < 1 or n_classes < 1:
            raise ValueError(f"SpeechEncoder: n_mels and n_classes must be >= 1, got {n_mels}, {n_classes}")
        self.n_mels = n_mels
        self.n_classes = n_classes
        self.kernel_size = cfg.kernel_size
        self.pool_size = cfg.pool
        self.feature_dim = cfg.lstm_hidden
        c, k = cfg.conv_channels, cfg.kernel_size
        self.conv1 = nn.Conv1d(n_mels, c, k, padding=k // 2)
        self.conv2 = nn.Conv1d(c, c, k)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool1d(cfg.pool)
        self.lstm = nn.LSTM(c, cfg.lstm_hidden, batch_first=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.lstm_hidden, n_classes)
        # Input normalisation per mel band, estimated on the training set by the trainer and carried
        # in the weights (and so in the ONNX graph): the runtime feeds plain log-mel.
        self.register_buffer("input_mean", torch.zeros(n_mels))
        self.register_buffer("input_std", torch.ones(n_mels))

    def set_input_normalization(self, mean: Tensor, std: Tensor) -> None:
        """Store per-band mean / std of the training log-mel (std floored at 1e-3)."""
        self.input_mean.copy_(mean.reshape(self.n_mels))
        self.input_std.copy_(std.reshape(self.n_mels).clamp_min(1e-3))

    @property
    def min_frames(self) -> int:
        """Fewest input frames that give at least one LSTM step."""
        return self.kernel_size - 1 + self.pool_size

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """LSTM steps for ``lengths`` input frames: ``(T - k + 1) // pool``."""
        return torch.div(lengths - (self.kernel_size - 1), self.pool_size, rounding_mode="floor")

    def _frontend(self, x: Tensor) -> Tensor:
        # (B, T, M) -> (B, T', C)
        y = self.act(self.conv1(x.transpose(1, 2)))
        y = self.act(self.conv2(y))
        pooled: Tensor = self.pool(y).transpose(1, 2)
        return pooled

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (B, T, n_mels) float32, optional lengths (B,) in input frames -> (features (B, H),
        logits (B, n_classes))."""
        x = (x - self.input_mean) / self.input_std
        if lengths is None:
            _, (h_n, _) = self.lstm(self._frontend(x))
        else:
            lengths = lengths.to(device=x.device, dtype=torch.long)
            if lengths.shape != (x.shape[0],):
                raise ValueError(f"SpeechEncoder: lengths must have shape ({x.shape[0]},), got {tuple(lengths.shape)}")
            if int(lengths.min()) < self.min_frames or int(lengths.max()) > x.shape[1]:
                raise ValueError(
                    f"SpeechEncoder: lengths must be in [{self.min_frames}, {x.shape[1]}] frames, "
                    f"got min {int(lengths.min())}, max {int(lengths.max())}"
                )
            # zero the padding so conv1's right edge sees the same zeros as an unpadded input
            valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
            y = self._frontend(torch.where(valid.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device)))
            steps = self.output_lengths(lengths).cpu()
            packed = pack_padded_sequence(y, steps, batch_first=True, enforce_sorted=False)
            _, (h_n, _) = self.lstm(packed)
        feats = h_n[-1]
        return feats, self.head(self.dropout(feats))

    def features(self, x: Tensor) -> Tensor:
        """Export form: x (B, T, n_mels) -> features (B, H); no packing."""
        return self.forward(x)[0]
