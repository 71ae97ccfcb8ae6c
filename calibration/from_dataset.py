"""Build a calibration set from a dataset split with the training front ends and torch networks.

The dataset is the bundle's own, of any kind: ``provenance.dataset.spec`` (RAVDESS, CREMA-D, MELD,
CMU-MOSI media, CSV manifests, the synthetic set), or a path / ``KIND:PATH`` spec given by the user
(:func:`edge_mmer.convert.parity.resolve_dataset`). The samples are exactly what the deployed
networks see: log-mel and face crops from the training front ends
(:func:`edge_mmer.datasets.frontend.extract_all`, as ``edge-mmer train`` runs them; defective media
skipped and counted) and ``preprocess_faces`` (through
:func:`edge_mmer.convert.parity.build_parity_inputs`, the code parity uses), the step graphs'
``x``/``h``/``c`` from stepping the torch context and fusion LSTMs over each session. The test
split is refused: calibration must never see the data the model is evaluated on. A bundle trained on
precomputed features (no encoders) is refused too. torch is imported when the builder runs, not when
this module is imported.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.calibration.sets import CalibrationSet

logger = logging.getLogger(__name__)

__all__ = ["CALIBRATION_SPLITS", "build_from_dataset"]

CALIBRATION_SPLITS = ("train", "val")
_STEP_NETWORKS = ("speech_context", "face_context", "fusion")


def build_from_dataset(bundle: Any, dataset_dir: str | os.PathLike[str] | None, split: str = "train",
                       n_utterances: int = 200, progress: bool = True, *, workers: int = 1,
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
    import torch

    from edge_mmer.bundle import Bundle, read_bundle
    from edge_mmer.convert.parity import build_parity_inputs
    from edge_mmer.datasets.resolve import require_encoders, resolve_dataset
    from edge_mmer.models.from_bundle import load_torch_networks

    b = bundle if isinstance(bundle, Bundle) else read_bundle(bundle)
    require_encoders(b, "an INT8 calibration set")
    data = resolve_dataset(b, dataset_dir)
    nets = load_torch_networks(b)
    logger.info("calibration: front ends over %d %s utterances of %s", n_utterances, split, data)
    inputs = build_parity_inputs(b, nets, data, n_utterances, split=split, workers=workers,
                                 cache_dir=None if cache_dir is None else Path(cache_dir), progress=progress)

    def names(net: str) -> list[str]:
        return [str(io["name"]) for io in b.networks[net]["inputs"]]

    arrays: dict[str, dict[str, list[np.ndarray]]] = {}
    arrays["speech_encoder"] = {names("speech_encoder")[0]: [np.ascontiguousarray(m[None], np.float32) for m in inputs.mels]}
    arrays["face_encoder"] = {names("face_encoder")[0]: [np.ascontiguousarray(f, np.float32) for f in inputs.faces]}
    with torch.no_grad():
        for net in _STEP_NETWORKS:
            if net not in b.networks:
                continue
            x_name, h_name, c_name = names(net)[:3]
            hidden = int(b.networks[net]["inputs"][1]["shape"][-1])
            module = nets[net]
            xs: list[np.ndarray] = []
            hs: list[np.ndarray] = []
            cs: list[np.ndarray] = []
            for seq in inputs.sequences.get(net, []):
                h = torch.zeros(1, hidden)
                c = torch.zeros(1, hidden)
                for x_t in seq:
                    x = torch.from_numpy(np.ascontiguousarray(x_t[None], np.float32))
                    xs.append(x.numpy().copy())
                    hs.append(h.numpy().copy())
                    cs.append(c.numpy().copy())
                    _, h, c = module.step(x, h, c)  # type: ignore[operator]
            arrays[net] = {x_name: xs, h_name: hs, c_name: cs}
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
    cs_ = CalibrationSet(arrays=arrays, provenance=provenance)
    cs_.provenance["counts"] = cs_.counts()
    cs_.validate("calibration set")
    logger.info("calibration set: %s", ", ".join(f"{k} {v}" for k, v in cs_.counts().items()))
    return cs_
