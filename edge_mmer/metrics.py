"""Metrics in the paper's layout and the datasets' own protocols: pure functions over labels and
predictions (numpy; matplotlib only inside :func:`plot_confusions`). Training and ``edge-mmer
evaluate`` both score with these, so a bundle's training-time figures and an evaluation's are one
computation. Torch-free.

* :func:`channel_report`: accuracy, weighted F1 (scikit-learn's ``average='weighted'``), per-class
  accuracy (recall: the paper's Table 3) and the confusion matrix, per channel;
* :func:`mosi_binary_report`: CMU-MOSI Acc-2 "Has0" (y >= 0 vs prediction positive) and "Non0"
  (y = 0 dropped, y > 0 vs prediction positive), each with its weighted F1. Acc-7, MAE and Pearson
  correlation need a model that predicts the score: this pipeline classifies, so they are not given;
* :func:`protocol_report`: the official score per dataset (MELD: weighted F1 of the final decision;
  MOSI: Acc-2 Has0 / Non0 and F1; otherwise accuracy and weighted F1);
* :func:`per_class_recall`: what the fuzzy densities are fitted from;
* :func:`plot_confusions`: one row-normalised confusion panel per channel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "NO_REGRESSION",
    "channel_report",
    "confusion_matrix",
    "mosi_binary_report",
    "per_class_recall",
    "plot_confusions",
    "protocol_report",
    "weighted_f1",
]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float | None:
    """F1 per class weighted by its support (``precision_recall_fscore_support(average='weighted')``,
    an undefined precision or recall counting as 0); None for no samples."""
    if len(y_true) == 0:
        return None
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(np.float64)
    tp = np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return float((f1 * support).sum() / support.sum())


def channel_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, weighted F1, per-class accuracy (recall, the paper's Table 3) and the confusion matrix."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    cm = confusion_matrix(y_true, y_pred, len(labels))
    support = cm.sum(axis=1)
    per_class = {
        label: (float(cm[i, i] / support[i]) if support[i] else None) for i, label in enumerate(labels)
    }
    return {
        "n": len(y_true),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else None,
        "weighted_f1": weighted_f1(y_true, y_pred, len(labels)),
        "per_class": per_class,
        "confusion": cm.tolist(),
    }


NO_REGRESSION = ("Acc-7, MAE and Corr need a model that predicts the sentiment score; this pipeline's LIBSVMs "
                 "classify polarity, so they are not reported")


def mosi_binary_report(scores: np.ndarray, pred_positive: np.ndarray) -> dict[str, Any]:
    """CMU-MOSI binary metrics from the annotated scores and the predicted polarity.

    Has0: truth ``score >= 0``, every segment. Non0: segments with ``score != 0``, truth ``score > 0``.
    A classifier's "predicted score" is its polarity, so ``ŷ >= 0`` and ``ŷ > 0`` are both "predicted
    positive". F1 is weighted over the two classes (the MMSA convention)."""
    y = np.asarray(scores, dtype=np.float64)
    p = np.asarray(pred_positive, dtype=bool)
    has0 = (y >= 0).astype(int)
    non0 = y != 0
    out: dict[str, Any] = {
        "n_has0": len(y),
        "acc2_has0": float(np.mean(has0 == p)) if len(y) else None,
        "f1_has0": weighted_f1(has0, p.astype(int), 2),
        "n_non0": int(non0.sum()),
        "acc2_non0": float(np.mean((y[non0] > 0) == p[non0])) if non0.any() else None,
        "f1_non0": weighted_f1((y[non0] > 0).astype(int), p[non0].astype(int), 2),
        "acc7": None,
        "mae": None,
        "corr": None,
        "note": NO_REGRESSION,
    }
    return out


def protocol_report(kind: str, task: str, labels: Sequence[str], y_true: np.ndarray,
                    predictions: dict[str, np.ndarray], scores: np.ndarray | None = None) -> dict[str, Any]:
    """The dataset's own scoring, per channel (``predictions[channel]``: class per utterance, -1 where
    the channel is absent) and ``official`` for the final decision."""
    y = np.asarray(y_true)
    out: dict[str, Any] = {"kind": kind, "task": task, "channels": {}}
    for name, pred in predictions.items():
        pred = np.asarray(pred)
        keep = pred >= 0
        entry: dict[str, Any] = {"n": int(keep.sum()),
                                 "accuracy": float(np.mean(pred[keep] == y[keep])) if keep.any() else None,
                                 "weighted_f1": weighted_f1(y[keep], pred[keep], len(labels))}
        if task == "sentiment-binary" and scores is not None:
            entry.update(mosi_binary_report(np.asarray(scores)[keep], pred[keep] == list(labels).index("positive")))
        out["channels"][name] = entry
    final = out["channels"].get("final", {})
    if task == "sentiment-binary":
        out["official"] = {k: final.get(k) for k in ("acc2_has0", "f1_has0", "acc2_non0", "f1_non0")}
        out["official"]["note"] = NO_REGRESSION
    elif kind == "meld":
        out["official"] = {"weighted_f1": final.get("weighted_f1"), "accuracy": final.get("accuracy"),
                           "note": "MELD's official score is the weighted F1 on the test split"}
    else:
        out["official"] = {"accuracy": final.get("accuracy"), "weighted_f1": final.get("weighted_f1")}
    return out


def per_class_recall(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall per class; a class absent from ``y_true`` gets the overall accuracy."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    support = cm.sum(axis=1)
    overall = float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else 0.5
    return np.array([cm[i, i] / support[i] if support[i] else overall for i in range(n_classes)], dtype=np.float64)


def plot_confusions(reports: dict[str, dict[str, Any]], labels: Sequence[str], path: Path, title: str) -> Path:
    """One confusion-matrix panel per channel, row-normalised, counts written in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(reports)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4.4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        cm = np.asarray(reports[name]["confusion"], dtype=np.float64)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        acc = reports[name]["accuracy"]
        ax.set_title(f"{name}: {100 * float(acc):.1f} %" if acc is not None else name, fontsize=10)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels if ax is axes[0][0] else [""] * len(labels), fontsize=8)
        for i in range(len(labels)):
            for j in range(len(labels)):
                if cm[i, j]:
                    ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted", fontsize=8)
    axes[0][0].set_ylabel("true", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))  # room for the suptitle
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
