"""What a training run is given (:class:`TrainOptions`), what it returns (:class:`TrainResult`), and
the few knobs every stage shares: the torch device, the progress bars, scaled epoch counts, seeding.

``edge-mmer evaluate`` picks its device and shows its progress with the same two helpers
(:func:`select_device`, :func:`progress`), so both commands refuse a missing GPU with one message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from edge_mmer.errors import TrainError
from edge_mmer.vocab import MODALITIES

log = logging.getLogger(__name__)

__all__ = ["TrainOptions", "TrainResult", "progress", "scaled_epochs", "seed_everything", "select_device"]

T = TypeVar("T")


@dataclass(frozen=True)
class TrainOptions:
    """``dataset``: a synthetic dataset directory (a Path) or a spec ``KIND:PATH[?options]`` (a str).
    ``workers``: front-end processes (1 = in this process); ``cache_dir``: the feature cache (None: off)."""

    dataset: Path | str
    out: Path
    seed: int = 0
    device: str = "auto"
    epochs_scale: float = 1.0
    ablation: bool = True
    overwrite: bool = False
    progress: bool = True
    workers: int = 1
    cache_dir: Path | None = None
    modalities: tuple[str, ...] = MODALITIES  # ("speech",), ("face",) or both
    face_init: str | None = None  # --face-init SOURCE (a file or a timm model name)
    face_freeze_epochs: int = 0  # the backbone's stem frozen for the first N face-encoder epochs
    checkpoint_dir: Path | None = None  # None: <out>.checkpoints beside the bundle
    checkpoints: bool = True
    resume: bool = False
    patience: int = 0  # epochs without a better validation accuracy before a stage stops (0: never)
    amp: str = "auto"  # "auto" (bf16 / fp16 on CUDA, fp32 on the CPU) or "off"
    loader_workers: int = 0  # DataLoader processes building the encoders' batches (0: in this one)

    def checkpoint_root(self) -> Path:
        """Where the per-epoch checkpoints and the training log go."""
        return self.checkpoint_dir if self.checkpoint_dir is not None else self.out.with_name(
            self.out.name + ".checkpoints")


@dataclass
class TrainResult:
    """What a run wrote (``bundle_dir``; on a torchrun rank other than 0 nothing: rank 0 writes), its
    metrics, and whether it continued from checkpoints (``resumed_from``)."""

    bundle_dir: Path
    metrics: dict[str, Any]
    resumed_from: Path | None = None
    writer: bool = True


def progress(iterable: Iterable[T], desc: str, enabled: bool, total: int | None = None) -> Iterable[T]:
    """``iterable`` behind a tqdm bar when ``enabled`` (on stderr, cleared when done), else as it is."""
    if not enabled:
        return iterable

    bar: Iterable[T] = tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)
    return bar


def select_device(spec: str) -> torch.device:
    """``auto`` (CUDA when there is one, else the CPU), ``cpu`` or ``cuda[:N]``; a CUDA device on a
    machine without CUDA raises :class:`TrainError`."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError(f"--device {spec}: CUDA is not available on this machine")
    return torch.device(spec)


def scaled_epochs(n: int, scale: float) -> int:
    """``n`` epochs times ``scale`` (``--epochs-scale``), at least one."""
    return max(1, round(n * scale))


def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)
