"""The one fit loop every network trains with: Adam, cosine learning-rate decay, cross-entropy
(optionally weighted per step, for padded sequences), gradient clipping at 5, and the weights of
the best validation epoch kept. The encoders and the sequence models differ only in the batches
they yield and how they score the validation split.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from edge_mmer.config import ModelConfig
from edge_mmer.train.options import progress as progress_bar

log = logging.getLogger(__name__)

__all__ = ["Batches", "fit_model"]

Batches = Callable[[np.random.Generator], Iterator[tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor | None]]]
"""One epoch's batches: (model inputs, targets, per-target weights or None), drawn with the run's generator."""


def fit_model(model: nn.Module, batches: Batches, val_accuracy: Callable[[], float], epochs: int, cfg: ModelConfig,
              rng: np.random.Generator, desc: str, progress: bool) -> float:
    """Adam + cross-entropy; keeps the weights of the best validation epoch. Returns that accuracy."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    best_acc, best_state = -1.0, copy.deepcopy(model.state_dict())
    bar = progress_bar(range(epochs), desc, progress)
    for _epoch in bar:
        model.train()
        total, count = 0.0, 0
        for inputs, targets, weight in batches(rng):
            opt.zero_grad(set_to_none=True)
            logits = model(*inputs)[1]
            losses = loss_fn(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            if weight is not None:
                w = weight.reshape(-1)
                loss = (losses * w).sum() / w.sum().clamp_min(1.0)
            else:
                loss = losses.mean()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total += float(loss.detach()) * len(targets)
            count += len(targets)
        sched.step()
        model.eval()
        acc = val_accuracy()
        if acc > best_acc:
            best_acc, best_state = acc, copy.deepcopy(model.state_dict())
        if progress and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{total / max(count, 1):.3f}", val=f"{acc:.3f}", best=f"{best_acc:.3f}")
    model.load_state_dict(best_state)
    model.eval()
    log.info("%s: best validation accuracy %.3f", desc, best_acc)
    return best_acc

