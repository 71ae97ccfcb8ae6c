"""A trained LIBSVM classifier: :class:`TrainedSVM` (probabilities, its model file, its manifest entry)
and loading one from its text model file (:func:`svm_from_bytes`, :func:`load_svm`).

The model a :class:`TrainedSVM` predicts with is always the one parsed back from its LIBSVM text file
(``svm_save_model`` writes support vectors with ``%.8g``), so a saved and re-loaded model gives
bit-identical probabilities. Loading validates the whole text file in Python first
(:mod:`edge_mmer.svm.model_file`): a corrupted file raises :class:`SVMModelError` naming the file and
line instead of crashing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_mmer.errors import SVMModelError
from edge_mmer.svm.model_file import read_model_header
from edge_mmer.svm.native import load_from_bytes, node_rows, predict_probability
from edge_mmer.svm.scaling import FeatureScaling, as_matrix

__all__ = ["TrainedSVM", "load_svm", "svm_from_bytes"]


@dataclass(eq=False)
class TrainedSVM:
    """A LIBSVM RBF C-SVC with probability outputs, its scaling, and how it was chosen.

    ``labels`` are the class indices present in training (sorted); ``predict_proba`` always has
    ``n_classes`` columns ordered 0..K-1, a class absent from training gets probability 0.
    """

    model: Any = field(repr=False)
    scaling: FeatureScaling = field(repr=False)
    labels: tuple[int, ...]
    n_classes: int
    c: float
    gamma: float
    cv_accuracy: float
    grid: list[tuple[float, float, float]] = field(default_factory=list, repr=False)
    model_text: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        internal = [int(v) for v in self.model.get_labels()]
        if any(not 0 <= v < self.n_classes for v in internal):
            raise SVMModelError(f"model labels {internal} are not class indices 0..{self.n_classes - 1}")
        self._columns = np.asarray(internal, dtype=np.int64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (N, n_classes) float64; rows sum to 1. Accepts (F,) for one row."""
        x = np.asarray(X, dtype=np.float64)
        single = x.ndim == 1
        x2 = as_matrix(x.reshape(1, -1) if single else x, "X")
        raw = predict_probability(self.model, node_rows(self.scaling.apply(x2)), len(self._columns))
        out = np.zeros((x2.shape[0], self.n_classes), dtype=np.float64)
        out[:, self._columns] = raw
        out /= out.sum(axis=1, keepdims=True)
        return out[0] if single else out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Class index with the highest probability (argmax of :meth:`predict_proba`), int64."""
        proba = self.predict_proba(X)
        return np.asarray(np.argmax(proba, axis=-1), dtype=np.int64)

    def model_bytes(self) -> bytes:
        """The LIBSVM text model file (as written by ``svm_save_model``)."""
        return self.model_text

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the LIBSVM text model file; the scaling goes in the manifest (:meth:`manifest_entry`)."""
        out = Path(path)
        out.write_bytes(self.model_text)
        return out

    def manifest_entry(self, model_file: str) -> dict[str, Any]:
        """The bundle manifest's ``svms.<channel>`` entry for this model stored at ``model_file``."""
        return {
            "model": model_file,
            "scaling": self.scaling.to_dict(),
            "c": float(self.c),
            "gamma": float(self.gamma),
            "cv_accuracy": float(self.cv_accuracy),
        }


def svm_from_bytes(
    data: bytes,
    scaling: FeatureScaling | Mapping[str, Any],
    n_classes: int,
    *,
    source: str = "<svm model>",
    c: float = math.nan,
    cv_accuracy: float = math.nan,
) -> TrainedSVM:
    """Validate and load a LIBSVM text model from bytes (``source`` names it in errors)."""
    if not isinstance(scaling, FeatureScaling):
        try:
            scaling = FeatureScaling.from_dict(scaling)
        except ValueError as exc:
            raise SVMModelError(f"{source}: {exc}") from None
    header = read_model_header(data, source, n_classes, scaling.n_features)
    model = load_from_bytes(data, source)
    return TrainedSVM(
        model=model,
        scaling=scaling,
        labels=tuple(sorted(header.labels)),
        n_classes=n_classes,
        c=float(c),
        gamma=header.gamma,
        cv_accuracy=float(cv_accuracy),
        grid=[],
        model_text=bytes(data),
    )


def load_svm(
    model_path: str | os.PathLike[str] | bytes,
    scaling: FeatureScaling | Mapping[str, Any],
    n_classes: int,
    *,
    c: float = math.nan,
    cv_accuracy: float = math.nan,
) -> TrainedSVM:
    """Load a LIBSVM text model file saved by :meth:`TrainedSVM.save` (path as str, Path or bytes)."""
    path = Path(os.fsdecode(model_path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SVMModelError(f"{path}: cannot read LIBSVM model file: {exc.strerror or exc}") from None
    return svm_from_bytes(data, scaling, n_classes, source=str(path), c=c, cv_accuracy=cv_accuracy)
