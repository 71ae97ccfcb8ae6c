"""Training: scale, grid-search ``C x gamma`` by stratified k-fold accuracy, fit the final ``-b 1`` model.

The folds are our own stratified split (numpy ``Generator(seed)``; LIBSVM's ``-v`` uses ``rand()``),
then the final ``-s 0 -t 2 -c C -g gamma -b 1`` model is trained with the C ``rand()`` seeded
(:mod:`edge_mmer.svm.native`), so the same data and seed give a byte-identical model file.

Grid search tie-break: the highest cross-validation accuracy wins; among equals the smallest C,
then the smallest gamma (the smoothest model).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from edge_mmer.config import SVMConfig
from edge_mmer.svm.model import TrainedSVM
from edge_mmer.svm.native import NodeRows, load_from_bytes, node_rows, predict_labels, save_to_bytes, train_model
from edge_mmer.svm.scaling import as_matrix, fit_scaling

__all__ = ["grid_best", "train_svm"]

log = logging.getLogger(__name__)


def _stratified_folds(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    fold = np.empty(y.size, dtype=np.int64)
    offset = 0
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold[idx] = (np.arange(idx.size) + offset) % k
        offset += idx.size
    return fold


def _class_indices(labels_in: np.ndarray, n_rows: int, n_classes: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """(y as int64, the classes present, K): ``y`` checked to be class indices 0..K-1."""
    if labels_in.ndim != 1 or labels_in.size != n_rows:
        raise ValueError(f"y: expected shape ({n_rows},), got {labels_in.shape}")
    if labels_in.size and not np.all(np.equal(np.mod(labels_in, 1), 0)):
        raise ValueError("y: class indices must be integers")
    yi = labels_in.astype(np.int64)
    present = np.unique(yi)
    if present.size < 2:
        raise ValueError(f"y: need at least two classes, got {present.tolist()}")
    if present[0] < 0:
        raise ValueError("y: class indices must be >= 0")
    k_classes = int(present[-1]) + 1 if n_classes is None else int(n_classes)
    if present[-1] >= k_classes:
        raise ValueError(f"y: class index {int(present[-1])} >= n_classes {k_classes}")
    return yi, present, k_classes


def _cv_correct(yf: np.ndarray, rows: NodeRows, folds: np.ndarray, n_folds: int, c: float, gamma: float,
                seed: int) -> int:
    correct = 0
    for f in range(n_folds):
        test = np.flatnonzero(folds == f)
        train = np.flatnonzero(folds != f)
        model = train_model(yf, rows, c, gamma, probability=False, seed=seed, idx=train)
        pred = predict_labels(model, rows, test)
        correct += int(np.sum(pred == yf[test]))
        del model
    return correct


def train_svm(
    X: np.ndarray,
    y: np.ndarray,
    cfg: SVMConfig,
    seed: int,
    progress: bool = False,
    *,
    n_classes: int | None = None,
) -> TrainedSVM:
    """Scale, grid-search (C, gamma) by stratified k-fold CV accuracy, train the final -b 1 model.

    ``y`` holds class indices 0..K-1 (``n_classes`` defaults to ``max(y) + 1``). Deterministic:
    the same data and seed give a byte-identical model file.
    """
    cfg.validate()
    x = as_matrix(X, "X")
    yi, present, k_classes = _class_indices(np.asarray(y), x.shape[0], n_classes)
    if x.shape[0] < cfg.folds:
        raise ValueError(f"need at least {cfg.folds} samples for {cfg.folds}-fold cross-validation, got {x.shape[0]}")

    scaling = fit_scaling(x)
    rows = node_rows(scaling.apply(x))
    yf = yi.astype(np.float64)
    folds = _stratified_folds(yi, cfg.folds, np.random.default_rng(seed))
    say = log.info if progress else log.debug

    grid: list[tuple[float, float, float]] = []
    best: tuple[int, float, float] | None = None  # (correct, C, gamma)
    for c in cfg.c_grid:
        for gamma in cfg.gamma_grid:
            correct = _cv_correct(yf, rows, folds, cfg.folds, float(c), float(gamma), seed)
            acc = correct / x.shape[0]
            grid.append((float(c), float(gamma), acc))
            say("svm grid: C=%g gamma=%g cv accuracy=%.4f", c, gamma, acc)
            if best is None or correct > best[0] or (correct == best[0] and (c, gamma) < (best[1], best[2])):
                best = (correct, float(c), float(gamma))
    assert best is not None
    correct, c_best, g_best = best
    cv_acc = correct / x.shape[0]
    say("svm: best C=%g gamma=%g cv accuracy=%.4f (%d-fold); training the probability model",
        c_best, g_best, cv_acc, cfg.folds)

    final = train_model(yf, rows, c_best, g_best, probability=True, seed=seed)
    text = save_to_bytes(final)
    del final
    loaded = load_from_bytes(text, "<trained svm>")
    return TrainedSVM(
        model=loaded,
        scaling=scaling,
        labels=tuple(int(v) for v in present),
        n_classes=k_classes,
        c=c_best,
        gamma=g_best,
        cv_accuracy=cv_acc,
        grid=grid,
        model_text=text,
    )


def grid_best(grid: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    """The (C, gamma, accuracy) entry :func:`train_svm` picks from a grid (ties: smallest C, gamma)."""
    return min(grid, key=lambda e: (-e[2], e[0], e[1]))
