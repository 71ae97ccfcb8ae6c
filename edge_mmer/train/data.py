"""Training's inputs: the dataset opened from its spec, the front ends over its media utterances
(grouped by session), or a feature dataset's standardised pooled vectors.

Media datasets go through the front ends in worker processes and the feature cache
(:func:`edge_mmer.datasets.frontend.extract_all`); a defect found there (a corrupt or overlong clip)
skips the utterance and counts it in the dataset's :class:`~edge_mmer.datasets.base.DefectSummary`.
Feature datasets (CMU-MOSI ``.csd`` files, MMSA / MulT pickles) have no media: their pooled feature
vectors, standardised with the training split's statistics, feed the context LSTMs directly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.config import ModelConfig
from edge_mmer.datasets.base import LoadedDataset
from edge_mmer.datasets.cache import CacheEntry
from edge_mmer.datasets.frontend import ExtractStats, UtteranceInput, extract_all
from edge_mmer.datasets.registry import open_dataset
from edge_mmer.errors import TrainError
from edge_mmer.features.face import HaarFaceDetector
from edge_mmer.train.distributed import Distributed
from edge_mmer.train.options import TrainOptions
from edge_mmer.vocab import MODALITIES, SPLITS

log = logging.getLogger(__name__)

__all__ = [
    "FeatureInputs",
    "Features",
    "Session",
    "UtteranceInput",
    "feature_inputs",
    "load_dataset",
    "prepare_data",
    "prepare_sessions",
    "with_dataset_labels",
]

Session = list[UtteranceInput]


@dataclass
class Features:
    """Per-session, per-utterance features at some stage; ``None`` where a modality is absent."""

    speech: list[list[np.ndarray | None]] = field(default_factory=list)
    face: list[list[np.ndarray | None]] = field(default_factory=list)


def load_dataset(spec: Path | str) -> LoadedDataset:
    """A synthetic directory (Path) or a ``KIND:PATH`` spec (str) -> the loaded dataset. Raises
    :class:`~edge_mmer.errors.DatasetError` naming the file or option at fault."""
    return open_dataset(f"synthetic:{spec}" if isinstance(spec, Path) else spec)


def with_dataset_labels(cfg: ModelConfig, ds: LoadedDataset) -> ModelConfig:
    """The dataset's labels become the model's (e.g. RAVDESS's 8, MELD's 7)."""
    if tuple(cfg.labels) == tuple(ds.labels):
        return cfg
    log.info("labels from the dataset (%s): %s", ds.kind, ", ".join(ds.labels))
    return replace(cfg, labels=tuple(ds.labels)).validate()


def _extract_sharded(utts: Sequence[Any], cfg: ModelConfig, opts: TrainOptions, ds: LoadedDataset,
                     dist: Distributed | None) -> tuple[dict[str, CacheEntry], ExtractStats]:
    """The front ends over ``utts``; under torchrun each rank decodes its share and every rank gets
    all of them (the result does not depend on the number of ranks)."""
    mine = dist.shard(utts) if dist is not None else list(utts)
    entries, stats = extract_all(mine, cfg, cache_dir=opts.cache_dir, workers=opts.workers,
                                 progress=opts.progress and (dist is None or dist.main), max_clip_s=ds.max_clip_s)
    if dist is None or not dist.active:
        return entries, stats
    merged: dict[str, CacheEntry] = {}
    total = ExtractStats()
    for part, part_stats in dist.all_gather((entries, stats)):
        merged.update(part)
        total.decoded += part_stats.decoded
        total.cached += part_stats.cached
        total.failed += part_stats.failed
        for k, v in part_stats.reasons.items():
            total.reasons[k] = total.reasons.get(k, 0) + v
    return merged, total


def prepare_data(ds: LoadedDataset, cfg: ModelConfig, opts: TrainOptions, splits: Sequence[str] = SPLITS,
                 dist: Distributed | None = None) -> tuple[dict[str, list[Session]], ExtractStats]:
    """The audio and face front ends over every utterance of ``splits`` (worker processes, feature
    cache, sharded across torchrun's ranks), grouped by session. Utterances whose media is defective
    are dropped and counted in ``ds.summary``; a session left empty is dropped. A speech-only run
    (``opts.modalities``) keeps no face crops."""
    utts = [u for split in splits for u in ds.utterances(split)]
    entries, stats = _extract_sharded(utts, cfg, opts, ds, dist)
    use_faces = "face" in opts.modalities
    if stats.cached:
        log.info("front ends: %d utterances from the feature cache, %d decoded", stats.cached, stats.decoded)
    out: dict[str, list[Session]] = {}
    for split in splits:
        sessions: list[Session] = []
        missing = total = 0
        for session in ds.sessions(split):
            items: Session = []
            for utt in session:
                entry = entries[utt.id]
                if entry.error or entry.mel is None:
                    ds.summary.skip(entry.error or "no_audio", utt.id)
                    log.debug("%s: skipped (%s: %s)", utt.id, entry.error, entry.detail)
                    continue
                faces = entry.faces if use_faces else None
                items.append(UtteranceInput(uid=utt.id, label=utt.label_index, mel=entry.mel, faces=faces))
                missing += faces is None
                total += 1
            if items:
                sessions.append(items)
        if missing and use_faces:
            log.warning("%s: no face found in %d of %d utterances (face channel absent for those)", split, missing,
                        total)
        out[split] = sessions
    if stats.failed:
        log.warning("front ends: %d utterances skipped (%s)", stats.failed,
                    ", ".join(f"{k} {v}" for k, v in sorted(stats.reasons.items())))
    return out, stats


def prepare_sessions(ds: LoadedDataset, split: str, cfg: ModelConfig, detector: HaarFaceDetector,
                     progress: bool) -> list[Session]:
    """The front ends over one split, in this process, without the cache."""
    del detector  # the front ends use the standard detector (the runtime's)
    return prepare_data(ds, cfg, TrainOptions(dataset="", out=Path(), progress=progress), (split,))[0][split]


@dataclass
class FeatureInputs:
    """A feature dataset's per-split context-LSTM inputs and the standardisation fitted on train."""

    features: dict[str, Features]
    labels: dict[str, list[list[int]]]
    uids: dict[str, list[list[str]]]
    norm: dict[str, dict[str, np.ndarray]]  # modality -> {"mean", "std"}


def standardise(v: np.ndarray | None, mean: np.ndarray, std: np.ndarray) -> np.ndarray | None:
    """``(v - mean) / std`` as float32; None (an absent modality) stays None."""
    if v is None:
        return None
    out: np.ndarray = ((v - mean) / std).astype(np.float32)
    return out


def feature_inputs(ds: LoadedDataset) -> FeatureInputs:
    """Pooled feature vectors, standardised with the training split's mean and standard deviation
    (a dimension with std < 1e-6 keeps std 1)."""
    norm: dict[str, dict[str, np.ndarray]] = {}
    for modality in MODALITIES:
        vecs = [getattr(u, modality) for u in ds.utterances("train") if getattr(u, modality) is not None]
        if not vecs:
            raise TrainError(f"{ds.spec}: no training utterance has {modality} features")
        x = np.stack(vecs).astype(np.float64)
        std = x.std(0)
        norm[modality] = {"mean": x.mean(0).astype(np.float32),
                          "std": np.where(std < 1e-6, 1.0, std).astype(np.float32)}

    def apply(modality: str, v: np.ndarray | None) -> np.ndarray | None:
        return standardise(v, norm[modality]["mean"], norm[modality]["std"])

    feats, labels, uids = {}, {}, {}
    for split in SPLITS:
        f = Features()
        sessions = ds.sessions(split)
        for session in sessions:
            f.speech.append([apply("speech", u.speech) for u in session])
            f.face.append([apply("face", u.face) for u in session])
        feats[split] = f
        labels[split] = [[u.label_index for u in s] for s in sessions]
        uids[split] = [[u.id for u in s] for s in sessions]
    return FeatureInputs(feats, labels, uids, norm)
