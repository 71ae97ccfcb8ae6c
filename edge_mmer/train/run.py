"""One training run, stage after stage, into a verified bundle (the order is the package's
docstring's). Every stage lives in its own module; this one only wires them and decides what the
run records.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edge_mmer.bundle import read_bundle
from edge_mmer.config import ModelConfig
from edge_mmer.datasets.frontend import ExtractStats
from edge_mmer.errors import TrainError
from edge_mmer.metrics import plot_confusions, protocol_report
from edge_mmer.models import FaceEncoder
from edge_mmer.train.back_end import fit_back_end
from edge_mmer.train.data import feature_inputs, load_dataset, prepare_data, with_dataset_labels
from edge_mmer.train.distributed import Distributed
from edge_mmer.train.encoders import encode, face_crops, fit_face_encoder, fit_speech_encoder
from edge_mmer.train.face_init import FaceInit, load_face_init
from edge_mmer.train.fit import FitContext
from edge_mmer.train.history import plot_curves, read_log
from edge_mmer.train.options import TrainOptions, TrainResult, seed_everything, select_device
from edge_mmer.train.outputs import encoder_dims, write_bundle
from edge_mmer.train.report import build_metrics, split_description
from edge_mmer.train.sequences import fit_context
from edge_mmer.train.setup import fit_context_for
from edge_mmer.vocab import MODALITIES, SPLITS

log = logging.getLogger(__name__)

__all__ = ["train"]


def train(cfg: ModelConfig, opts: TrainOptions) -> TrainResult:
    """Train everything and write the bundle to ``opts.out``; returns the metrics. Raises
    :class:`~edge_mmer.errors.TrainError` (the output exists, no CUDA, a split without sessions,
    checkpoints of another run) and :class:`~edge_mmer.errors.DatasetError` (the dataset cannot be
    read). Under torchrun every rank calls it; rank 0 alone writes (:mod:`.distributed`)."""
    dist = Distributed.from_env(opts.device)
    try:
        return _train(cfg, opts, dist)
    finally:
        dist.close()


def _train(cfg: ModelConfig, opts: TrainOptions, dist: Distributed) -> TrainResult:
    started = time.monotonic()
    seed_everything(opts.seed)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    if opts.out.exists() and any(opts.out.iterdir()) and not opts.overwrite:
        raise TrainError(f"{opts.out} exists and is not empty (use --overwrite)")
    device = select_device(dist.device(opts.device))
    rng = np.random.default_rng(opts.seed)
    ds = load_dataset(opts.dataset)
    cfg = with_dataset_labels(cfg, ds)
    log.info("training '%s' on %s (device %s, seed %d)", cfg.name, ds.spec, device, opts.seed)
    init = None
    if opts.face_init and "face" in opts.modalities and not ds.features_only:  # keys checked before any work
        init = load_face_init(opts.face_init, FaceEncoder(len(cfg.labels), cfg.face_encoder, cfg.face.crop_size))
    fit = fit_context_for(cfg, ds, opts, dist, device)
    net_acc: dict[str, float] = {}
    encoders: dict[str, nn.Module] = {}
    stats: ExtractStats | None = None
    inputs: dict[str, dict[str, Any]] | None = None
    modalities = tuple(m for m in MODALITIES if m in opts.modalities)
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
        data, stats = prepare_data(ds, cfg, opts, dist=dist)
        labels = {split: [[u.label for u in s] for s in data[split]] for split in SPLITS}
        uids = {split: [[u.uid for u in s] for s in data[split]] for split in SPLITS}
        counts = {split: sum(len(s) for s in data[split]) for split in SPLITS}
        for split in SPLITS:
            if not data[split]:
                raise TrainError(f"the dataset has no '{split}' sessions")
        if "face" in modalities and not any(u.faces is not None for s in data["train"] for u in s):
            face_crops(data["train"])  # raises: no face in any training utterance, try --modalities speech
        speech_enc = face_enc = None
        if "speech" in modalities:
            speech_enc, net_acc["speech_encoder"] = fit_speech_encoder(data, cfg, opts, fit, rng)
            encoders["speech_encoder"] = speech_enc
        if "face" in modalities:
            face_enc, net_acc["face_encoder"] = fit_face_encoder(data, cfg, opts, fit, rng, init)
            encoders["face_encoder"] = face_enc
        if not dist.main:  # the rest is small: rank 0 alone fits it and writes the bundle
            log.info("rank %d: encoders trained; rank 0 writes the bundle", dist.rank)
            return TrainResult(bundle_dir=opts.out, metrics={}, writer=False)
        enc = encode(data, speech_enc, face_enc, cfg, device, opts.progress)
        dims = encoder_dims(cfg)
    fit = replace(fit, dist=Distributed())
    resumed_from = opts.checkpoint_root() if opts.resume else None
    return _back_half(cfg, opts, ds, fit, rng, started, enc, labels, uids, counts, dims, net_acc, encoders, stats,
                      inputs, modalities, init, resumed_from)


def _back_half(cfg: ModelConfig, opts: TrainOptions, ds: Any, fit: FitContext, rng: np.random.Generator,
               started: float, enc: Any, labels: dict[str, list[list[int]]], uids: dict[str, list[list[str]]],
               counts: dict[str, int], dims: dict[str, int], net_acc: dict[str, float],
               encoders: dict[str, nn.Module], stats: ExtractStats | None, inputs: dict[str, dict[str, Any]] | None,
               modalities: tuple[str, ...], init: FaceInit | None, resumed_from: Path | None) -> TrainResult:
    """Context LSTMs, back end, metrics, curves and the bundle (rank 0)."""
    if ds.features_only and modalities != MODALITIES:
        raise TrainError(f"--modalities {','.join(modalities)}: a feature dataset ({ds.kind}) trains both modalities")
    context = fit_context(enc, labels, dims, cfg, opts, fit, rng, modalities)
    net_acc.update({f"{m}_context": context.val_acc[m] for m in modalities})
    back = fit_back_end(context.features, labels, cfg, cfg.selection.keep_fraction, opts, fit, rng, modalities)
    if back.fusion is not None:
        net_acc["fusion"] = back.fusion_val_acc
    ablation = None
    if opts.ablation and cfg.selection.keep_fraction < 1.0:
        ablation = fit_back_end(context.features, labels, cfg, 1.0, opts, fit, rng, modalities)

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
    if modalities != MODALITIES:
        metrics["modalities"] = list(modalities)
    metrics["training"] = {stage: {"best_epoch": r.best_epoch, "epochs_run": r.epochs_run, "epochs": r.epochs,
                                   "stopped_early": r.stopped_early} for stage, r in fit.results.items()}
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
    plot_confusions({k: back.reports[k] for k in (*back.head.channels, "final")}, cfg.labels, png, title)
    extra = _curves(fit, opts, cfg.name, bool(metrics["synthetic"]))
    dims["fusion_in"] = int(sum(sel.mask.sum() for sel in back.selections.values()))
    nets: dict[str, nn.Module] = {**encoders, **{f"{m}_context": context.nets[m] for m in modalities}}
    if back.fusion is not None:
        nets["fusion"] = back.fusion
    more_prov = {"face_init": init.provenance} if init is not None else {}
    out = write_bundle(opts, cfg, ds, nets, back, dims, metrics, png, dataset_meta, inputs, extra, more_prov)
    png.unlink(missing_ok=True)
    read_bundle(out, verify=True)  # what we wrote must verify
    if fit.checkpoints is not None:
        fit.checkpoints.finish(out)
    log.info("bundle written to %s in %.0f s", out, time.monotonic() - started)
    return TrainResult(bundle_dir=out, metrics=metrics, resumed_from=resumed_from)


def _curves(fit: FitContext, opts: TrainOptions, name: str, synthetic: bool) -> dict[str, bytes]:
    """The training log and its loss / accuracy curves (the paper's Fig. 7) for the bundle's reports."""
    text = fit.log.text()
    out = {"reports/train_log.jsonl": text.encode("utf-8")}
    png = opts.out.parent / f".{opts.out.name}.curves.png"
    title = f"edge-mmer '{name}': training loss and validation accuracy" + (" (SYNTHETIC data)" if synthetic else "")
    if plot_curves(read_log(text), png, title) is not None:
        out["reports/curves.png"] = png.read_bytes()
        png.unlink(missing_ok=True)
    return out
