"""Batches: drawn by the run's generator, built (and augmented) by a :class:`BatchSource`, delivered by a
DataLoader (worker processes, pinned memory), split across DDP ranks.

An epoch's plan is drawn in the main process from the run's generator only: a permutation of the
items cut into batches of ``batch_size``, and one seed per batch for its augmentation
(:func:`epoch_plan`). A batch is then built from its indices and seed alone
(:meth:`BatchSource.batch`), so the result does not depend on how many loader workers build the
batches, nor on whether the run is resumed from a checkpoint. Under DDP each rank builds its
contiguous part of every global batch (:func:`shard_plan`); a batch whose smallest part would be
below the source's ``min_batch`` is skipped on every rank alike (DDP needs the same number of steps
everywhere).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

log = logging.getLogger(__name__)

__all__ = ["Batch", "BatchKey", "BatchSource", "EpochLoader", "epoch_plan", "shard_plan"]

Batch = tuple[tuple[torch.Tensor, ...], torch.Tensor, "torch.Tensor | None"]
"""(model inputs, targets, per-target weights or None)."""

BatchKey = tuple[np.ndarray, int]
"""A batch's item indices and its augmentation seed."""


class BatchSource(Protocol):
    """The training items of one network and how a batch of them is built."""

    min_batch: int  # smaller batches are skipped (BatchNorm on a 1x1 map needs two crops)

    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray, seed: int) -> Batch: ...


def epoch_plan(n: int, batch_size: int, rng: np.random.Generator) -> list[BatchKey]:
    """One epoch: a permutation of ``n`` items in batches of ``batch_size``, a seed per batch."""
    order = rng.permutation(n)
    chunks = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    seeds = rng.integers(0, 2**62, size=len(chunks))
    return [(c, int(s)) for c, s in zip(chunks, seeds, strict=True)]


def shard_plan(plan: Sequence[BatchKey], rank: int, world: int, min_batch: int) -> list[BatchKey]:
    """Rank ``rank``'s contiguous part of every batch (the whole plan in a world of one), skipping the
    batches whose smallest part would hold fewer than ``min_batch`` items."""
    out = []
    for indices, seed in plan:
        parts = np.array_split(indices, world)
        if min(len(p) for p in parts) < max(1, min_batch):
            continue
        out.append((parts[rank], seed))
    return out


class _Built(Dataset[Batch]):
    """Map-style view of a source: ``dataset[(indices, seed)]`` is that batch (what the workers call)."""

    def __init__(self, source: BatchSource) -> None:
        self.source = source

    def __getitem__(self, key: BatchKey) -> Batch:  # keyed by a batch, not by an int
        return self.source.batch(*key)

    def __len__(self) -> int:
        return len(self.source)


class _PlanSampler:
    """The current epoch's batch keys (set by :meth:`EpochLoader.plan`), as a DataLoader sampler."""

    def __init__(self) -> None:
        self.keys: list[BatchKey] = []

    def __iter__(self) -> Iterator[BatchKey]:
        return iter(list(self.keys))

    def __len__(self) -> int:
        return len(self.keys)


class EpochLoader:
    """Batches of a source, built in ``workers`` processes (0: in this one), pinned for a GPU."""

    def __init__(self, source: BatchSource, workers: int = 0, pin_memory: bool = False) -> None:
        self.source = source
        self.sampler = _PlanSampler()
        self.workers = max(0, int(workers))
        self.loader: DataLoader[Batch] | None = None
        if self.workers:
            self.loader = DataLoader(_Built(source), batch_size=None, sampler=self.sampler,
                                     num_workers=self.workers, pin_memory=pin_memory,
                                     persistent_workers=True, collate_fn=_identity)
        self.pin = pin_memory

    def epoch(self, keys: Sequence[BatchKey]) -> Iterator[Batch]:
        """The batches of ``keys``, in order."""
        self.sampler.keys = list(keys)
        if self.loader is not None:
            yield from self.loader
            return
        for key in self.sampler.keys:
            yield self.source.batch(*key)


def _identity(batch: Any) -> Any:
    """The batch as the source built it (batches are whole already: no collation)."""
    return batch
