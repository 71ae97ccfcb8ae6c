"""Training on several processes: PyTorch's own engine, ``torchrun`` + DistributedDataParallel.

``torchrun --nproc_per_node N -m edge_mmer.cli train ...`` starts N copies of the command with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous in the environment (several nodes: the
same command on each, ``--nnodes``, ``--node_rank`` or a ``--rdzv-endpoint``; see docs/training.md).
:meth:`Distributed.from_env` joins the process group (NCCL on GPUs, gloo on CPUs); a plain run is a
world of one and nothing here touches ``torch.distributed``.

What the ranks share: the front ends (each rank decodes its shard of the utterances, then every rank
gets all of them, :meth:`Distributed.all_gather`), and the encoders (DDP: each rank trains on its
part of every batch, gradients averaged). The sequence models, the back end and the bundle are rank
0's alone: they are small, and one writer means one bundle. Every rank checks that it sees the same
dataset and configuration as rank 0 (:meth:`Distributed.agree`) before any work starts.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as tdist

from edge_mmer.errors import TrainError

log = logging.getLogger(__name__)

__all__ = ["Distributed", "in_torchrun"]

T = TypeVar("T")

#: How long a rank waits for the others at a collective (a dead rank is an error, not a hang).
TIMEOUT = _dt.timedelta(minutes=30)


def in_torchrun() -> bool:
    """Whether torchrun (or another launcher) started this process as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class Distributed:
    """This process's place in the run: ``rank`` of ``world`` (1: a plain run), the local rank on its
    node, and the collective backend (None: not joined)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        """Rank 0: the one that logs progress, writes checkpoints, the bundle and the reports."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.backend is not None and self.world > 1

    @classmethod
    def from_env(cls, device: str) -> Distributed:
        """Join the process group torchrun set up (NCCL when ``device`` is CUDA, else gloo); a world
        of one when the process was not started by a launcher."""
        if not in_torchrun():
            return cls()
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        backend = "nccl" if cuda else "gloo"
        if cuda:
            torch.cuda.set_device(local)
        if not tdist.is_initialized():
            tdist.init_process_group(backend=backend, timeout=TIMEOUT)
        log.info("rank %d of %d (local rank %d, %s)", rank, world, local, backend)
        return cls(rank=rank, world=world, local_rank=local, backend=backend)

    def device(self, spec: str) -> str:
        """The device spec this rank trains on: its own GPU (``cuda:LOCAL_RANK``) under a CUDA run."""
        if self.active and (spec == "cuda" or (spec == "auto" and torch.cuda.is_available())):
            return f"cuda:{self.local_rank}"
        return spec

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items`` (every ``world``-th, from ``rank``)."""
        return list(items[self.rank::self.world])

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order (``[obj]`` in a world of one)."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if not self.active:
            return obj
        box: list[Any] = [obj]
        tdist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[no-any-return]  # what rank 0 sent

    def agree(self, what: str, value: Any) -> None:
        """Raise :class:`TrainError` on every rank when some rank's ``value`` differs from rank 0's
        (the ranks must train on one dataset with one configuration)."""
        values = self.all_gather(value)
        bad = [r for r, v in enumerate(values) if v != values[0]]
        if bad:
            ranks = ", ".join(str(r) for r in bad)
            raise TrainError(f"torchrun: rank(s) {ranks} of {self.world} see another {what} than rank 0 "
                             f"({values[bad[0]]!r} vs {values[0]!r}): every rank must be given the same "
                             "--dataset (the same files at the same path) and the same options")

    def barrier(self) -> None:
        if self.active:
            tdist.barrier()

    def close(self) -> None:
        """Leave the process group (idempotent)."""
        if self.active and tdist.is_initialized():
            tdist.destroy_process_group()
        self.backend = None
