"""Build a calibration set from a dataset split with the training front ends and the torch networks.

The dataset is the bundle's own, of any kind: ``provenance.dataset.spec`` (RAVDESS, CREMA-D, MELD,
CMU-MOSI media, CSV manifests, the synthetic set), or a path / ``KIND:PATH`` spec given by the user
(:func:`edge_mmer.datasets.resolve.resolve_dataset`). The samples are exactly what the deployed
networks see: the first N usable utterances of a split through the training front ends
(:func:`edge_mmer.datasets.frontend.extract_all`, as ``edge-mmer train`` runs them; defective media
skipped and counted), then the decision path on the torch networks
(:func:`inputs_from_dataset`, which conversion parity uses too), every network's feeds kept: the
log-mel, the normalised face crops, and the step graphs' ``x``/``h``/``c`` as each session is
stepped from a zero state. The test split is refused: calibration must never see the data the model
is evaluated on. A bundle trained on precomputed features (no encoders) is refused too. torch is
imported when the builder runs, not when this module is imported.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge_mmer.bundle import Bundle, read_bundle
from edge_mmer.calibration.inputs import NetworkInputs, record_network_inputs
from edge_mmer.calibration.sets import CalibrationSet
from edge_mmer.datasets.resolve import open_bundle_dataset, require_encoders, resolve_dataset, usable_split
from edge_mmer.runner import Runner

log = logging.getLogger(__name__)

__all__ = ["CALIBRATION_SPLITS", "build_from_dataset", "inputs_from_dataset"]

CALIBRATION_SPLITS = ("train", "val")


def inputs_from_dataset(bundle: Bundle, runners: Mapping[str, Runner], dataset: Path | str, n: int = 16,
                        split: str = "val", *, workers: int = 1, cache_dir: Path | None = None,
                        progress: bool = False) -> NetworkInputs:
    """Every network's real inputs (:mod:`edge_mmer.calibration.inputs`) from the first ``n`` usable
    utterances of ``split`` of ``dataset`` (a synthetic directory or a ``KIND:PATH`` spec, see
    :func:`~edge_mmer.datasets.resolve.resolve_dataset`; whole sessions in order, the last one cut),
    with ``runners`` computing each later network's inputs. Raises ``DatasetUnusableError`` when the
    split has no usable utterance."""
    require_encoders(bundle)
    ds = open_bundle_dataset(bundle, dataset)
    sessions, skipped = usable_split(bundle, ds, split, n, dataset=dataset, workers=workers, cache_dir=cache_dir,
                                     progress=progress)
    out = record_network_inputs(bundle, runners, sessions, skipped)
    log.info("real inputs: %d %s utterances in %d sessions (%d with a face)", out.n_utterances, split,
             len(sessions), len(out.faces))
    return out


def build_from_dataset(bundle: Bundle | str | os.PathLike[str], dataset_dir: str | os.PathLike[str] | None,
                       split: str = "train", n_utterances: int = 200, progress: bool = True, *, workers: int = 1,
                       cache_dir: str | os.PathLike[str] | None = None) -> CalibrationSet:
    """Calibration samples for every network of ``bundle`` (a :class:`~edge_mmer.bundle.Bundle` or
    its directory) from the first ``n_utterances`` usable utterances of ``split`` (``train`` or
    ``val``) of its dataset: ``dataset_dir`` (a synthetic directory, the recorded dataset kind's root,
    or a ``KIND:PATH[?options]`` spec) or, when None, the one the manifest records
    (``provenance.dataset``). ``workers`` / ``cache_dir``: the front ends' processes and feature cache,
    as in training. Raises ``ValueError`` (split, features-only bundle, unusable dataset) or
    ``FileNotFoundError`` (dataset missing), each naming what to do."""
    if split == "test":
        raise ValueError("calibration must never see the test split (it is the held-out evaluation data): "
                         "use --split train or val")
    if split not in CALIBRATION_SPLITS:
        raise ValueError(f"calibration split {split!r}: expected one of {', '.join(CALIBRATION_SPLITS)}")
    if n_utterances < 1:
        raise ValueError(f"calibration: n_utterances must be >= 1, got {n_utterances}")
    from edge_mmer.models.torch_runner import torch_runners

    b = bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
    require_encoders(b, "an INT8 calibration set")
    data = resolve_dataset(b, dataset_dir)
    log.info("calibration: front ends over %d %s utterances of %s", n_utterances, split, data)
    inputs = inputs_from_dataset(b, torch_runners(b), data, n_utterances, split=split, workers=workers,
                                 cache_dir=None if cache_dir is None else Path(cache_dir), progress=progress)
    provenance: dict[str, Any] = {
        "source": f"dataset:{data}:{split}",
        "split": split,
        "utterances": inputs.n_utterances,
        "model_id": b.model_id,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "dataset_kind": "synthetic" if isinstance(data, Path) else data.partition(":")[0],
        "front_ends": "edge_mmer.datasets.frontend.extract_all + preprocess_faces (training front ends)",
    }
    if inputs.skipped:
        provenance["skipped"] = dict(sorted(inputs.skipped.items()))
    cs = CalibrationSet(arrays=inputs.arrays(), provenance=provenance)
    cs.provenance["counts"] = cs.counts()
    cs.validate("calibration set")
    log.info("calibration set: %s", ", ".join(f"{k} {v}" for k, v in cs.counts().items()))
    return cs
