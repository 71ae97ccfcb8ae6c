"""The back end, fitted on the context features: chi-square masks (eq. 1) -> fusion LSTM over the
concatenated masked features -> one LIBSVM per channel (C / gamma by cross-validation) -> fuzzy
densities from each SVM's per-class validation recall, lambda solved per class and subset -> the
integral (as configured, or the one with the better validation accuracy) -> test metrics.

:func:`decision_reports` scores decisions made utterance by utterance; training feeds it the SVM
supports of a whole split at once (:func:`evaluate_split`), ``edge-mmer evaluate`` the channels of
:func:`edge_mmer.networks.decide_utterance`, so both report one computation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_mmer.config import ModelConfig
from edge_mmer.decision import DecisionHead, channels_for
from edge_mmer.fuzzy import densities_from_recall, fit_fuzzy_measure
from edge_mmer.metrics import channel_report, per_class_recall
from edge_mmer.models import FusionLSTM
from edge_mmer.selection import ChiSquareSelection, fit_chi_square
from edge_mmer.svm import TrainedSVM, train_svm
from edge_mmer.train.data import Features
from edge_mmer.train.fit import FitContext
from edge_mmer.train.options import TrainOptions, scaled_epochs
from edge_mmer.train.sequences import fit_sequence_model, present_steps, run_sequences
from edge_mmer.vocab import CHANNELS, MODALITIES, SPLITS

log = logging.getLogger(__name__)

__all__ = ["INTEGRALS", "BackEnd", "decision_reports", "evaluate_split", "fit_back_end"]

INTEGRALS = ("sugeno", "choquet")

Supports = Mapping[str, np.ndarray | None]
"""One utterance's LIBSVM probabilities per channel; None where the channel is absent."""


@dataclass
class BackEnd:
    keep_fraction: float
    selections: dict[str, ChiSquareSelection]
    fusion: FusionLSTM | None  # None: a single-modality run
    fusion_val_acc: float
    head: DecisionHead
    reports: dict[str, dict[str, Any]]  # test split, per channel + final
    val_accuracy: dict[str, float]
    by_integral: dict[str, dict[str, float]]  # split -> final accuracy per integral
    test_predictions: dict[str, np.ndarray] = field(default_factory=dict)  # channel -> class per utterance


def _stack_present(seqs: Sequence[Sequence[np.ndarray | None]], labels: Sequence[Sequence[int]]
                   ) -> tuple[np.ndarray, np.ndarray]:
    xs = [v for s in seqs for v in s if v is not None]
    ys = [lab for s, ls in zip(seqs, labels, strict=True) for v, lab in zip(s, ls, strict=True) if v is not None]
    if not xs:
        return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def fit_back_end(
    ctx: dict[str, Features], labels: dict[str, list[list[int]]], cfg: ModelConfig, keep_fraction: float,
    opts: TrainOptions, fit: FitContext, rng: np.random.Generator, modalities: Sequence[str] = MODALITIES,
) -> BackEnd:
    """Chi-square masks -> fusion LSTM -> three SVMs -> fuzzy measure -> test metrics. A
    single-modality run (``modalities``) has one mask, no fusion and one SVM; the integral over one
    channel is that channel's supports."""
    channels = channels_for(modalities)
    n_classes = len(cfg.labels)
    tag = f"keep {keep_fraction:.0%}"
    # 1. chi-square masks per modality, on the training split's context features
    selections = {}
    for modality in modalities:
        x, y = _stack_present(getattr(ctx["train"], modality), labels["train"])
        selections[modality] = fit_chi_square(x, y, n_classes, keep_fraction)
    masked: dict[str, dict[str, list[list[np.ndarray | None]]]] = {
        split: {m: ([[None if v is None else selections[m].apply(v) for v in s] for s in getattr(ctx[split], m)]
                    if m in selections else [[None] * len(lab) for lab in labels[split]])
                for m in MODALITIES}
        for split in SPLITS
    }
    fusion: FusionLSTM | None = None
    fusion_acc = 0.0
    if "fused" in channels:
        fusion, fusion_acc, fused = _fit_fusion(masked, labels, cfg, keep_fraction, opts, fit, rng)
    else:
        fused = {split: [[None] * len(lab) for lab in labels[split]] for split in SPLITS}
    channel_feats = {split: {"speech": masked[split]["speech"], "face": masked[split]["face"], "fused": fused[split]}
                     for split in SPLITS}
    # 3. one LIBSVM per channel
    svms: dict[str, TrainedSVM] = {}
    for name in channels:
        x, y = _stack_present(channel_feats["train"][name], labels["train"])
        log.info("LIBSVM %s (%s): %d samples x %d features, grid search", name, tag, *x.shape)
        svms[name] = train_svm(x, y, cfg.svm, seed=opts.seed, progress=opts.progress, n_classes=n_classes)
    # 4. fuzzy densities from per-class validation recall
    densities, val_accuracy = {}, {}
    for name in channels:
        x, y = _stack_present(channel_feats["val"][name], labels["val"])
        pred = svms[name].predict(x)
        val_accuracy[name] = float(np.mean(pred == y))
        densities[name] = densities_from_recall(per_class_recall(y, pred, n_classes))
    measure = fit_fuzzy_measure(densities)
    head = DecisionHead(selections=selections, svms=svms, measure=measure, method="sugeno")
    # 5. the integral: as configured, or (auto) the one with the better validation accuracy
    _, val_extra, _ = evaluate_split(head, channel_feats["val"], labels["val"], cfg)
    if cfg.fuzzy.integral == "auto":
        head.method = max(INTEGRALS, key=lambda m: val_extra[f"final_{m}_accuracy"])
    else:
        head.method = cfg.fuzzy.integral
    val_accuracy["final"] = val_extra[f"final_{head.method}_accuracy"]
    log.info("fuzzy integral (%s): %s (validation: sugeno %.3f, choquet %.3f)", tag, head.method,
             val_extra["final_sugeno_accuracy"], val_extra["final_choquet_accuracy"])
    # 6. test metrics, per channel and final, the decision made utterance by utterance
    reports, test_extra, test_preds = evaluate_split(head, channel_feats["test"], labels["test"], cfg)
    by_integral = {"validation": val_extra, "test": test_extra}
    return BackEnd(keep_fraction, selections, fusion, fusion_acc, head, reports, val_accuracy, by_integral, test_preds)


def _fit_fusion(masked: dict[str, dict[str, list[list[np.ndarray | None]]]], labels: dict[str, list[list[int]]],
                cfg: ModelConfig, keep_fraction: float, opts: TrainOptions, fit: FitContext, rng: np.random.Generator
                ) -> tuple[FusionLSTM, float, dict[str, list[list[np.ndarray | None]]]]:
    """The fusion LSTM over the concatenated masked features (steps where both modalities are
    present), and its outputs per split."""
    joint = {
        split: [[None if f is None or s_ is None else np.concatenate([s_, f]).astype(np.float32)
                 for s_, f in zip(ss, fs, strict=True)]
                for ss, fs in zip(masked[split]["speech"], masked[split]["face"], strict=True)]
        for split in SPLITS
    }
    in_dim = next(v for s in joint["train"] for v in s if v is not None).shape[0]
    fusion = FusionLSTM(in_dim, len(cfg.labels), cfg.fusion).to(fit.device)
    stage = "fusion" if keep_fraction == cfg.selection.keep_fraction else f"fusion_keep{round(keep_fraction * 100)}"
    fusion_acc = fit_sequence_model(fusion, present_steps(joint["train"], labels["train"]),
                                    present_steps(joint["val"], labels["val"]),
                                    scaled_epochs(cfg.train.fusion_epochs, opts.epochs_scale), cfg, rng, stage, fit)
    return fusion, fusion_acc, {split: run_sequences(fusion, joint[split], fit.device) for split in SPLITS}


def decision_reports(head: DecisionHead, supports: Sequence[Supports], y_true: Sequence[int], labels: Sequence[str]
                     ) -> tuple[dict[str, dict[str, Any]], dict[str, float], dict[str, np.ndarray]]:
    """Per-channel reports (over the utterances where the channel is present) and the final
    decision's, from each utterance's channel supports (in order); the final accuracy under each
    integral; the predictions per utterance (-1 where a channel is absent)."""
    y = np.asarray(y_true, dtype=np.int64)
    reports: dict[str, dict[str, Any]] = {}
    preds: dict[str, np.ndarray] = {}
    for name in CHANNELS:
        preds[name] = np.array([-1 if (p := s.get(name)) is None else int(np.argmax(p)) for s in supports],
                               dtype=np.int64)
        present = preds[name] >= 0
        reports[name] = channel_report(y[present], preds[name][present], labels)
    # a face-only bundle makes no decision on an utterance without a face: -1, left out of "final"
    decided = np.array([any(v is not None for v in s.values()) for s in supports], dtype=bool)
    finals = {m: np.array([int(np.argmax(head.fuse(dict(s), m))) if d else -1 for s, d in zip(supports, decided,
                                                                                                strict=True)],
                          dtype=np.int64)
              for m in INTEGRALS}
    preds["final"] = finals[head.method]
    reports["final"] = channel_report(y[decided], preds["final"][decided], labels)
    extra = {f"final_{m}_accuracy": float(np.mean(v[decided] == y[decided])) if decided.any() else 0.0
             for m, v in finals.items()}
    return reports, extra, preds


def evaluate_split(head: DecisionHead, feats: dict[str, list[list[np.ndarray | None]]], labels: list[list[int]],
                   cfg: ModelConfig) -> tuple[dict[str, dict[str, Any]], dict[str, float], dict[str, np.ndarray]]:
    """:func:`decision_reports` over a split's channel inputs (sessions flattened): each channel's
    LIBSVM runs once over the utterances where it is present."""
    probs: dict[str, list[np.ndarray | None]] = {}
    n = sum(len(s) for s in labels)
    for name in CHANNELS:
        if name not in head.svms:  # a single-modality bundle's absent channels
            probs[name] = [None] * n
            continue
        seqs = feats[name]
        x, _ = _stack_present(seqs, labels)
        p = iter(head.svms[name].predict_proba(x)) if len(x) else iter(())
        probs[name] = [next(p) if v is not None else None for s in seqs for v in s]
    supports = [{name: probs[name][i] for name in CHANNELS} for i in range(n)]
    return decision_reports(head, supports, [lab for s in labels for lab in s], cfg.labels)
