"""The one comparator (after Polygraphy's ``Comparator.compare_accuracy``): one runner's outputs
against a reference runner's, run by run on the same feeds, output by output.

Every closeness figure the converter records comes from here: ONNX FP32 / FP16 parity against
PyTorch (:mod:`edge_mmer.convert.parity`) and INT8 drift against FP32 ONNX
(:mod:`edge_mmer.convert.drift`), so a cosine in one place means what it means in the other.

An output array is read as row vectors along its last axis ((B, F) gives B rows, (F,) one row).
Per output: ``max_abs`` is the largest ``|reference - output|`` over every element of every run;
``cosine`` is the mean over all rows of the rows' cosine similarity (computed in float64; two
all-zero rows count as 1.0); ``samples`` is the number of rows. numpy only, so the runtime could
use it too if it ever lived below the runtime.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["OutputComparison", "compare", "compare_arrays"]


@dataclass(frozen=True)
class OutputComparison:
    """How close one output is to its reference over all runs."""

    max_abs: float
    cosine: float
    samples: int  # rows compared


def _rows(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(a, np.float64).reshape(-1, np.asarray(a).shape[-1]) for a in arrays])


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = (a * b).sum(1) / np.maximum(na * nb, 1e-30)
    out: np.ndarray = np.where((na == 0) & (nb == 0), 1.0, cos)
    return out


def compare_arrays(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
                   name: str = "output") -> OutputComparison:
    """One output over all runs: ``reference[i]`` against ``outputs[i]`` (see the module docstring).
    Raises ``ValueError`` when the runs or the row shapes differ."""
    if len(reference) != len(outputs):
        raise ValueError(f"{name}: {len(reference)} reference runs, {len(outputs)} to compare")
    if not reference:
        raise ValueError(f"{name}: no runs to compare")
    r, g = _rows(reference), _rows(outputs)
    if r.shape != g.shape:
        raise ValueError(f"{name}: output shapes differ: {r.shape} vs {g.shape}")
    return OutputComparison(max_abs=float(np.abs(r - g).max()), cosine=float(_row_cosines(r, g).mean()),
                            samples=len(r))


def compare(reference_outputs: Sequence[Mapping[str, np.ndarray]], outputs: Sequence[Mapping[str, np.ndarray]],
            names: Sequence[str] | None = None) -> dict[str, OutputComparison]:
    """Per output name (``names``, or every output of the first reference run, in its order): the
    runs of ``outputs`` against those of ``reference_outputs`` (``{output name: array}`` per run)."""
    if len(reference_outputs) != len(outputs):
        raise ValueError(f"{len(reference_outputs)} reference runs, {len(outputs)} to compare")
    if not reference_outputs:
        raise ValueError("no runs to compare")
    keys = list(names) if names is not None else list(reference_outputs[0])
    return {k: compare_arrays([run[k] for run in reference_outputs], [run[k] for run in outputs], k) for k in keys}
