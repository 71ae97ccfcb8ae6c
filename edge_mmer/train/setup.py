"""What a run sets up before its first stage: the ranks' agreement on the dataset and configuration,
the run's fingerprint, the checkpoint store and the training log, bundled into a :class:`FitContext`.

The fingerprint (:func:`run_fingerprint`) is what ``--resume`` compares: the configuration, a digest
of the dataset (every utterance id, split and label), the modalities, the seed, the epoch scale and
the face initialisation. A checkpoint directory of another run is refused, naming each field that
differs. Under torchrun only rank 0 touches the directory; its verdict (or its error) is broadcast,
so every rank fails alike and none waits forever.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from edge_mmer.config import ModelConfig
from edge_mmer.datasets.base import LoadedDataset
from edge_mmer.errors import TrainError
from edge_mmer.train.checkpoints import CheckpointStore
from edge_mmer.train.distributed import Distributed
from edge_mmer.train.fit import FitContext
from edge_mmer.train.history import TrainLog
from edge_mmer.train.options import TrainOptions
from edge_mmer.train.precision import choose_precision
from edge_mmer.vocab import SPLITS

log = logging.getLogger(__name__)

__all__ = ["LOG_FILE", "dataset_digest", "fit_context_for", "run_fingerprint"]

LOG_FILE = "train_log.jsonl"


def dataset_digest(ds: LoadedDataset) -> str:
    """sha256 over every utterance's split, id and label: two copies of one dataset agree, a dataset
    with another file, split or label does not."""
    h = hashlib.sha256()
    for split in SPLITS:
        for u in ds.utterances(split):
            h.update(f"{split}\t{u.id}\t{getattr(u, 'label_index', '')}\n".encode())
    return h.hexdigest()


def run_fingerprint(cfg: ModelConfig, ds: LoadedDataset, opts: TrainOptions, digest: str) -> dict[str, Any]:
    """The fields ``--resume`` compares (the module docstring)."""
    return {
        "config": json.loads(json.dumps(cfg.to_dict())),
        "dataset": {"kind": ds.kind, "digest": digest,
                    "utterances": {sp: len(ds.utterances(sp)) for sp in SPLITS}},
        "modalities": list(opts.modalities),
        "seed": opts.seed,
        "epochs_scale": opts.epochs_scale,
        "face_init": opts.face_init,
        "face_freeze_epochs": opts.face_freeze_epochs,
        "ablation": opts.ablation,
    }


def fit_context_for(cfg: ModelConfig, ds: LoadedDataset, opts: TrainOptions, dist: Distributed,
                    device: Any) -> FitContext:
    """The ranks agree on the run, then rank 0 opens (or refuses) the checkpoint directory."""
    digest = dataset_digest(ds)
    dist.agree("dataset", f"{ds.kind} {digest[:16]} ({sum(len(ds.utterances(s)) for s in SPLITS)} utterances)")
    fingerprint = run_fingerprint(cfg, ds, opts, digest)
    dist.agree("configuration", hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16])
    store: CheckpointStore | None = None
    train_log = TrainLog(None, enabled=dist.main)
    if opts.checkpoints:
        root = opts.checkpoint_root()
        error = None
        try:
            store = CheckpointStore(root, fingerprint, resume=opts.resume, overwrite=opts.overwrite,
                                    writer=dist.main)
        except TrainError as exc:
            error = str(exc)
        error = dist.broadcast(error)
        if error:
            raise TrainError(error)
        path = root / LOG_FILE
        if dist.main and not opts.resume:
            path.unlink(missing_ok=True)
        train_log = TrainLog(path, enabled=dist.main)
        if opts.resume:
            log.warning("resuming the run in %s", root)
    elif opts.resume:
        raise TrainError("--resume needs checkpoints (drop --no-checkpoints)")
    ctx = FitContext(device=device, progress=opts.progress and dist.main, patience=opts.patience,
                     loader_workers=opts.loader_workers, precision=choose_precision(opts.amp, device),
                     checkpoints=store, log=train_log, dist=dist)
    ctx.log.event("resumed_run" if opts.resume else "started", world_size=dist.world,
                  precision=ctx.precision.name, modalities=list(opts.modalities))
    return ctx
