"""LIBSVM classifiers (libsvm-official): C-SVC, RBF kernel, probability outputs, stored scaling.

Torch-free: the runtime imports this package. Nothing here uses pickle. One job per module:

* :mod:`~edge_mmer.svm.scaling`: :class:`FeatureScaling` (``svm-scale -l -1 -u 1``, stored as JSON in
  the bundle manifest) and :func:`fit_scaling`;
* :mod:`~edge_mmer.svm.train`: :func:`train_svm` (grid search ``C x gamma`` by stratified k-fold
  accuracy, then the final ``-b 1`` model, byte-identical for the same data and seed), :func:`grid_best`;
* :mod:`~edge_mmer.svm.model`: :class:`TrainedSVM`, :func:`svm_from_bytes`, :func:`load_svm`;
* :mod:`~edge_mmer.svm.model_file`: :func:`validate_model_text`, the whole LIBSVM text file checked
  before LIBSVM's C parser sees it;
* :mod:`~edge_mmer.svm.native`: the ctypes side (node arrays, ``srand`` / OpenMP hooks,
  :func:`set_libsvm_threads`).
"""

from __future__ import annotations

from edge_mmer.errors import SVMModelError
from edge_mmer.svm.model import TrainedSVM, load_svm, svm_from_bytes
from edge_mmer.svm.model_file import validate_model_text
from edge_mmer.svm.native import set_libsvm_threads
from edge_mmer.svm.scaling import FeatureScaling, fit_scaling
from edge_mmer.svm.train import grid_best, train_svm

__all__ = [
    "FeatureScaling",
    "SVMModelError",
    "TrainedSVM",
    "fit_scaling",
    "grid_best",
    "load_svm",
    "set_libsvm_threads",
    "svm_from_bytes",
    "train_svm",
    "validate_model_text",
]
