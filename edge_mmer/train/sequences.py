"""The sequence models: a context LSTM per modality over each session's utterance features, and
the fusion LSTM (fitted by the back end) over the masked, concatenated context features.

An utterance in which no face is found has no face channel: the face context LSTM and the fusion
LSTM do not step on it (their state carries over). Training sequences follow the same rule
(:func:`present_steps`), so the runtime's streaming path computes the same thing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from edge_mmer.config import ModelConfig
from edge_mmer.errors import TrainError
from edge_mmer.models import ContextLSTM, FusionLSTM
from edge_mmer.train.batches import Batch
from edge_mmer.train.data import Features
from edge_mmer.train.fit import FitContext, fit_model
from edge_mmer.train.options import TrainOptions, scaled_epochs
from edge_mmer.vocab import MODALITIES, SPLITS

log = logging.getLogger(__name__)

__all__ = ["ContextStage", "SequenceBatches", "fit_context", "fit_sequence_model", "present_steps", "run_sequences"]

Sequences = tuple[list[list[np.ndarray]], list[list[int]]]
"""Per sequence (session): the steps' input vectors and their labels."""


def present_steps(seqs: Sequence[Sequence[np.ndarray | None]], labels: Sequence[Sequence[int]]) -> Sequences:
    """Per sequence, the steps where the modality is present (absent steps do not advance the LSTM)."""
    xs: list[list[np.ndarray]] = []
    ys: list[list[int]] = []
    for seq, lab in zip(seqs, labels, strict=True):
        keep = [i for i, v in enumerate(seq) if v is not None]
        xs.append([v for v in (seq[i] for i in keep) if v is not None])
        ys.append([lab[i] for i in keep])
    return xs, ys


def _pad_sequences(seqs: Sequence[Sequence[np.ndarray]], labels: Sequence[Sequence[int]]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, length, dim = len(seqs), max(len(s) for s in seqs), len(seqs[0][0])
    x = torch.zeros(n, length, dim)
    y = torch.zeros(n, length, dtype=torch.long)
    w = torch.zeros(n, length)
    for i, (s, lab) in enumerate(zip(seqs, labels, strict=True)):
        x[i, : len(s)] = torch.from_numpy(np.stack(s))
        y[i, : len(s)] = torch.tensor(lab)
        w[i, : len(s)] = 1.0
    return x, y, w


class SequenceBatches:
    """An LSTM's training items (one padded sequence per session) and their augmentation: Gaussian
    feature noise at ``noise`` times the inputs' standard deviation, drawn per batch."""

    min_batch = 1

    def __init__(self, seqs: Sequence[Sequence[np.ndarray]], labels: Sequence[Sequence[int]], noise: float) -> None:
        self.x, self.y, self.w = _pad_sequences(seqs, labels)
        self.sigma = noise * (float(self.x[self.w > 0].std()) if (self.w > 0).any() else 1.0)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def batch(self, indices: np.ndarray, seed: int) -> Batch:
        r = np.random.default_rng(seed)
        idx = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        x = self.x[idx]
        x = x + torch.from_numpy(r.normal(0, self.sigma, size=tuple(x.shape)).astype(np.float32))
        return (x,), self.y[idx], self.w[idx]


def fit_sequence_model(model: ContextLSTM | FusionLSTM, train: Sequences, val: Sequences, epochs: int,
                       cfg: ModelConfig, rng: np.random.Generator, stage: str, ctx: FitContext,
                       noise: float = 0.1) -> float:
    """Train an LSTM over utterance sequences (one sequence per session), cross-entropy per step."""
    seqs, labels = [s for s in train[0] if s], [lab for s, lab in zip(*train, strict=True) if s]
    if not seqs:
        raise TrainError(f"{stage}: no training session has a step for this network")
    source = SequenceBatches(seqs, labels, noise)
    device = ctx.device

    @torch.no_grad()
    def val_acc() -> float:
        correct = total = 0
        for s, lab in zip(*val, strict=True):
            if not s:
                continue
            logits = model(torch.from_numpy(np.stack(s))[None].to(device))[1][0]
            correct += int((logits.argmax(-1).cpu() == torch.tensor(lab)).sum())
            total += len(lab)
        return correct / max(total, 1)

    result = fit_model(model, source, val_acc, epochs, cfg, rng, stage, ctx, batch_size=max(1, min(16, len(seqs))))
    return result.val_accuracy


@torch.no_grad()
def run_sequences(model: ContextLSTM | FusionLSTM, seqs: Sequence[Sequence[np.ndarray | None]],
                  device: torch.device) -> list[list[np.ndarray | None]]:
    """Outputs per step; absent steps stay None and do not advance the state."""
    model.eval()
    out: list[list[np.ndarray | None]] = []
    for seq in seqs:
        present = [v for v in seq if v is not None]
        ys = (iter(model(torch.from_numpy(np.stack(present))[None].to(device))[0][0].cpu().numpy()) if present
              else iter(()))
        out.append([next(ys).astype(np.float32) if v is not None else None for v in seq])
    return out


@dataclass
class ContextStage:
    nets: dict[str, ContextLSTM]
    val_acc: dict[str, float]
    features: dict[str, Features]


def fit_context(enc: dict[str, Features], labels: dict[str, list[list[int]]], dims: dict[str, int], cfg: ModelConfig,
                opts: TrainOptions, ctx_fit: FitContext, rng: np.random.Generator,
                modalities: Sequence[str] = MODALITIES) -> ContextStage:
    """One unidirectional context LSTM per modality over each session's utterance features."""
    device = ctx_fit.device
    n_classes = len(cfg.labels)
    ctx: dict[str, Features] = {split: Features() for split in SPLITS}
    nets: dict[str, ContextLSTM] = {}
    acc: dict[str, float] = {}
    for modality in modalities:
        net = ContextLSTM(dims[modality], n_classes, cfg.context).to(device)
        acc[modality] = fit_sequence_model(
            net, present_steps(getattr(enc["train"], modality), labels["train"]),
            present_steps(getattr(enc["val"], modality), labels["val"]),
            scaled_epochs(cfg.train.context_epochs, opts.epochs_scale), cfg, rng, f"{modality}_context", ctx_fit)
        nets[modality] = net
        for split in SPLITS:
            setattr(ctx[split], modality, run_sequences(net, getattr(enc[split], modality), device))
    return ContextStage(nets, acc, ctx)
