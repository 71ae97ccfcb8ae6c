"""What training writes: the manifest's network I/O spec (:func:`network_entries`, the one builder,
which the benchmarks use too) and the bundle itself (:func:`write_bundle`): every network's
safetensors, the chi-square masks, the three LIBSVMs, the fuzzy measure, the metrics and the
confusion figure, then the manifest with its provenance (:func:`edge_mmer.provenance.provenance`).

Encoders take one input and give one output; the context and fusion LSTMs are step graphs
``(x, h, c) -> (y, h_out, c_out)`` whose state the runtime holds. A feature dataset's bundle has no
encoders; its context networks then record what their input is and its standardisation
(``networks.*_context.input``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_mmer.bundle import BundleWriter
from edge_mmer.config import ModelConfig
from edge_mmer.datasets.base import LoadedDataset
from edge_mmer.provenance import provenance
from edge_mmer.vocab import SPLITS

if TYPE_CHECKING:
    from torch import nn

    from edge_mmer.train.back_end import BackEnd
    from edge_mmer.train.options import TrainOptions

log = logging.getLogger(__name__)

__all__ = ["encoder_dims", "network_entries", "state_to_numpy", "write_bundle"]


def _io(name: str, shape: list[int | str], dtype: str = "float32") -> dict[str, Any]:
    return {"name": name, "shape": shape, "dtype": dtype}


def _step_io(in_dim: int, hidden: int, out_name: str,
             out_dim: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    ins = [_io("x", [1, in_dim]), _io("h", [1, hidden]), _io("c", [1, hidden])]
    outs = [_io(out_name, [1, out_dim]), _io("h_out", [1, hidden]), _io("c_out", [1, hidden])]
    return ins, outs


def encoder_dims(cfg: ModelConfig) -> dict[str, int]:
    """What the encoders give the context LSTMs: ``speech`` and ``face`` feature sizes."""
    return {"speech": cfg.speech_encoder.lstm_hidden, "face": cfg.face_encoder.embedding_dim}


def network_entries(cfg: ModelConfig, dims: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per network, the manifest entry's ``class``, ``arch``, ``inputs`` and ``outputs``. ``dims``:
    the context LSTMs' input sizes ``speech`` and ``face`` (:func:`encoder_dims`, or a feature
    dataset's vector sizes) and ``fusion_in``, the fusion LSTM's (the selected speech + face features)."""
    n_classes = len(cfg.labels)
    crop = cfg.face.crop_size
    out: dict[str, dict[str, Any]] = {
        "speech_encoder": {"class": "SpeechEncoder", "arch": {"n_mels": cfg.audio.n_mels, "n_classes": n_classes},
                           "inputs": [_io("log_mel", [1, "time", cfg.audio.n_mels])],
                           "outputs": [_io("features", [1, dims["speech"]])]},
        "face_encoder": {"class": "FaceEncoder", "arch": {"img_size": crop, "n_classes": n_classes},
                         "inputs": [_io("face", ["batch", 3, crop, crop])],
                         "outputs": [_io("embedding", ["batch", dims["face"]])]},
    }
    steps = {"speech_context": ("ContextLSTM", dims["speech"], cfg.context.hidden, "y", cfg.context.hidden),
             "face_context": ("ContextLSTM", dims["face"], cfg.context.hidden, "y", cfg.context.hidden),
             "fusion": ("FusionLSTM", dims["fusion_in"], cfg.fusion.hidden, "features", cfg.fusion.fc)}
    for name, (cls, in_dim, hidden, y_name, y_dim) in steps.items():
        ins, outs = _step_io(in_dim, hidden, y_name, y_dim)
        out[name] = {"class": cls, "arch": {"input_dim": in_dim, "n_classes": n_classes}, "inputs": ins,
                     "outputs": outs}
    return out


def state_to_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    """The module's state dict as contiguous CPU arrays (what the bundle's safetensors hold)."""
    return {k: v.detach().cpu().contiguous().numpy() for k, v in module.state_dict().items()}


def _description(ds: LoadedDataset, synthetic: bool) -> str:
    if synthetic:
        return ("Trained on the SYNTHETIC edge-mmer dataset (espeak-ng speech, rendered faces): "
                "a demonstration model, not a recogniser of real people.")
    description = f"Trained on {ds.kind} ({ds.task}; labels: {', '.join(ds.labels)})."
    if ds.features_only:
        description += (" Precomputed features only (" + ", ".join(
            str(v) for k, v in ds.info.items() if k in ("audio_features", "visual_features", "pickle_layout") and v)
            + "): the context, selection, fusion and SVM stages; no encoders, so the runtime cannot run it on "
            "a camera and a microphone.")
    return description


def write_bundle(
    opts: TrainOptions, cfg: ModelConfig, ds: LoadedDataset, nets: dict[str, nn.Module], back: BackEnd,
    dims: dict[str, int], metrics: dict[str, Any], reports_png: Path, dataset_meta: dict[str, Any],
    inputs: dict[str, dict[str, Any]] | None = None, extra_files: dict[str, bytes] | None = None,
    extra_provenance: dict[str, Any] | None = None,
) -> Path:
    """The bundle: every network in ``nets`` (a feature dataset's bundle has no encoders; ``inputs``
    then records, per context network, what its input is and its standardisation)."""
    writer = BundleWriter(opts.out, overwrite=opts.overwrite)
    entries = network_entries(cfg, dims)
    networks = {}
    for name, module in nets.items():
        rel = writer.add_safetensors(f"networks/{name}.safetensors", state_to_numpy(module),
                                     metadata={"network": name, "format": "pt"})
        networks[name] = {"weights": rel, **entries[name], "artifacts": {}}
        if inputs and name in inputs:
            networks[name]["input"] = inputs[name]
    selection = {m: writer.add_safetensors(f"selection/{m}.safetensors", sel.to_arrays(),
                                           metadata={"keep_fraction": str(sel.keep_fraction)})
                 for m, sel in back.selections.items()}
    svms = {name: writer.add_svm(name, svm) for name, svm in back.head.svms.items()}
    writer.add_file("reports/confusion.png", reports_png.read_bytes())
    writer.add_json("reports/metrics.json", metrics)
    for rel, data in (extra_files or {}).items():
        writer.add_file(rel, data)
    synthetic = bool(dataset_meta.get("synthetic", False))
    dataset_prov: dict[str, Any] = {"path": str(ds.root), "kind": ds.kind, "spec": ds.spec,
                                    "generator": dataset_meta.get("generator"), "seed": dataset_meta.get("seed"),
                                    "synthetic": synthetic}
    if not synthetic:
        dataset_prov.update({"task": ds.task, "features_only": ds.features_only,
                             "utterances": {sp: len(ds.utterances(sp)) for sp in SPLITS}})
    manifest = {
        "model_id": f"edge-mmer-{cfg.name}-{time.strftime('%Y%m%d')}-s{opts.seed}",
        "synthetic": synthetic,
        "description": _description(ds, synthetic),
        "labels": list(cfg.labels),
        "config": cfg.to_dict(),
        "networks": networks,
        "selection": {m: {"file": rel, "keep_fraction": back.keep_fraction,
                          "n_features": int(back.selections[m].mask.shape[0]),
                          "n_selected": int(back.selections[m].mask.sum())} for m, rel in selection.items()},
        "svms": svms,
        "fuzzy": {"integral": back.head.method, **back.head.measure.to_dict()},
        "metrics": metrics,
        "provenance": provenance(dataset_prov, opts.seed, **(extra_provenance or {})),
    }
    writer.write_manifest(manifest)
    return opts.out
