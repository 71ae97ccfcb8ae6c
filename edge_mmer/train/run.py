"""One training run, stage after stage, into a verified bundle (the order is the package's
docstring's). Every stage lives in its own module; this one only wires them and decides what the
run records.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_mmer.bundle import read_bundle
from edge_mmer.config import ModelConfig
from edge_mmer.datasets.frontend import ExtractStats
from edge_mmer.errors import TrainError
from edge_mmer.metrics import plot_confusions, protocol_report
from edge_mmer.train.back_end import fit_back_end
from edge_mmer.train.data import feature_inputs, load_dataset, prepare_data, with_dataset_labels
from edge_mmer.train.encoders import encode, fit_face_encoder, fit_speech_encoder
from edge_mmer.train.options import TrainOptions, TrainResult, seed_everything, select_device
from edge_mmer.train.outputs import encoder_dims, write_bundle
from edge_mmer.train.report import build_metrics, split_description
from edge_mmer.train.sequences import fit_context
from edge_mmer.vocab import CHANNELS, MODALITIES, SPLITS

log = logging.getLogger(__name__)

__all__ = ["train"]


def train(cfg: ModelConfig, opts: TrainOptions) -> TrainResult:
    """Train everything and write the bundle to ``opts.out``; returns the metrics. Raises
    :class:`~edge_mmer.errors.TrainError` (the output exists, no CUDA, a split without sessions) and
    :class:`~edge_mmer.errors.DatasetError` (the dataset cannot be read)."""
    started = time.monotonic()
    seed_everything(opts.seed)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    if opts.out.exists() and any(opts.out.iterdir()) and not opts.overwrite:
        raise TrainError(f"{opts.out} exists and is not empty (use --overwrite)")
    device = select_device(opts.device)
    rng = np.random.default_rng(opts.seed)
    ds = load_dataset(opts.dataset)
    cfg = with_dataset_labels(cfg, ds)
    log.info("training '%s' on %s (device %s, seed %d)", cfg.name, ds.spec, device, opts.seed)
    net_acc: dict[str, float] = {}
    encoders: dict[str, nn.Module] = {}
    stats: ExtractStats | None = None
    inputs: dict[str, dict[str, Any]] | None = None
    if ds.features_only:
        fi = feature_inputs(ds)
        enc, labels, uids = fi.features, fi.labels, fi.uids
        dims = {m: int(fi.norm[m]["mean"].shape[0]) for m in MODALITIES}
        counts = {split: sum(len(s) for s in labels[split]) for split in SPLITS}
        inputs = {f"{m}_context": {"kind": "precomputed", "modality": m, "pooling": "mean,std over time",
                                   "source": ds.info, "mean": fi.norm[m]["mean"].tolist(),
                                   "std": fi.norm[m]["std"].tolist()} for m in MODALITIES}
        for split in SPLITS:
            if not labels[split]:
                raise TrainError(f"the dataset has no '{split}' sessions")
    else:
        data, stats = prepare_data(ds, cfg, opts)
        labels = {split: [[u.label for u in s] for s in data[split]] for split in SPLITS}
        uids = {split: [[u.uid for u in s] for s in data[split]] for split in SPLITS}
        counts = {split: sum(len(s) for s in data[split]) for split in SPLITS}
        for split in SPLITS:
            if not data[split]:
                raise TrainError(f"the dataset has no '{split}' sessions")
        speech_enc, net_acc["speech_encoder"] = fit_speech_encoder(data, cfg, opts, device, rng)
        face_enc, net_acc["face_encoder"] = fit_face_encoder(data, cfg, opts, device, rng)
        encoders = {"speech_encoder": speech_enc, "face_encoder": face_enc}
        enc = encode(data, speech_enc, face_enc, cfg, device, opts.progress)
        dims = encoder_dims(cfg)

    context = fit_context(enc, labels, dims, cfg, opts, device, rng)
    net_acc.update({"speech_context": context.val_acc["speech"], "face_context": context.val_acc["face"]})
    back = fit_back_end(context.features, labels, cfg, cfg.selection.keep_fraction, opts, device, rng)
    net_acc["fusion"] = back.fusion_val_acc
    ablation = None
    if opts.ablation and cfg.selection.keep_fraction < 1.0:
        ablation = fit_back_end(context.features, labels, cfg, 1.0, opts, device, rng)

    if ds.kind == "synthetic":
        dataset_meta = json.loads((ds.root / "dataset.json").read_text(encoding="utf-8"))
    else:
        dataset_meta = {"synthetic": False}
    by_id = {u.id: u for u in ds.utterances("test")}
    test_ids = [uid for s in uids["test"] for uid in s]
    scores = np.array([getattr(by_id[uid], "score", None) or 0.0 for uid in test_ids], dtype=np.float64)
    protocol = protocol_report(ds.kind, ds.task, cfg.labels, np.array([lab for s in labels["test"] for lab in s]),
                               back.test_predictions, scores if ds.task == "sentiment-binary" else None)
    metrics = build_metrics(cfg, dataset_meta, counts, back, ablation, net_acc, time.monotonic() - started)
    if ds.kind != "synthetic":
        metrics["split"] = split_description(ds)
        metrics["dataset"] = ds.describe()
        metrics["protocol"] = protocol
        if stats is not None:
            metrics["extraction"] = stats.to_dict()
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    png = opts.out.parent / f".{opts.out.name}.confusion.png"
    title = f"edge-mmer '{cfg.name}' on {metrics['split']}" + (" (SYNTHETIC data)" if metrics["synthetic"] else "")
    if ds.kind == "synthetic":
        title = f"edge-mmer '{cfg.name}' on held-out test speakers (SYNTHETIC data)"
    plot_confusions({k: back.reports[k] for k in (*CHANNELS, "final")}, cfg.labels, png, title)
    dims["fusion_in"] = int(back.selections["speech"].mask.sum() + back.selections["face"].mask.sum())
    nets: dict[str, nn.Module] = {**encoders, "speech_context": context.nets["speech"],
                                  "face_context": context.nets["face"], "fusion": back.fusion}
    out = write_bundle(opts, cfg, ds, nets, back, dims, metrics, png, dataset_meta, inputs)
    png.unlink(missing_ok=True)
    read_bundle(out, verify=True)  # what we wrote must verify
    log.info("bundle written to %s in %.0f s", out, time.monotonic() - started)
    return TrainResult(bundle_dir=out, metrics=metrics)
