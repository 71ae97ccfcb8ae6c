"""ONNX Runtime against PyTorch on real samples from the bundle's own dataset.

The dataset is the one the bundle was trained on: ``provenance.dataset.spec`` (``KIND:PATH[?options]``,
any kind of :mod:`edge_mmer.datasets.registry`) or, for the synthetic set and bundles that predate
the spec, ``provenance.dataset.path``; ``--data`` replaces the recorded path (the kind and options
are kept) or gives a whole ``KIND:PATH`` spec (:func:`resolve_dataset`). ``N`` utterances of a split
go through the training front ends (:func:`edge_mmer.datasets.frontend.extract_all`, the code
``edge-mmer train`` runs: log-mel, Haar crops; media utterances on the runtime's frame grid, clips
longer than the dataset's ``max_clip_s`` skipped, optionally through the feature cache); an
utterance whose media is defective is skipped and counted, as in training (:func:`prepare_split`).

The samples are every network's feeds on the decision path over the torch networks
(:func:`edge_mmer.calibration.from_dataset.inputs_from_dataset`). :func:`measure_parity` gives them
to the torch network (:class:`~edge_mmer.models.torch_runner.TorchRunner`) and to the ONNX artifact
(:class:`~edge_mmer.runtime.runners.onnxruntime_runner.OnnxRuntimeRunner`), Polygraphy-style: the
encoders one utterance at a time; the step graphs stepped through each session from a zero state,
each runner carrying its own ``h``/``c``, so an error that builds up in the state shows. The outputs
go through the one comparator (:mod:`edge_mmer.convert.compare`). Per network: the largest absolute
difference over every output (for a step graph ``y``, ``h_out`` and ``c_out`` at every step) and the
mean cosine similarity of the first output's vectors.

A bundle trained on precomputed features (CMU-MOSI ``.csd`` files, MMSA / MulT pickles) has no
encoders: :func:`require_encoders` refuses it (nothing a device could feed from a camera and a
microphone). Finding, opening and preparing the bundle's dataset is :mod:`edge_mmer.datasets.resolve`
(:func:`resolve_dataset`, :func:`open_bundle_dataset`, :func:`prepare_split`, :func:`require_encoders`,
re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_mmer.calibration.inputs import NetworkInputs
from edge_mmer.calibration.tap import TapRunner
from edge_mmer.convert.compare import OutputComparison, compare, compare_arrays
from edge_mmer.datasets.resolve import open_bundle_dataset, prepare_split, require_encoders, resolve_dataset
from edge_mmer.errors import DatasetMissingError, DatasetUnusableError, FeatureBundleError
from edge_mmer.networks import StepLSTM
from edge_mmer.runner import Runner
from edge_mmer.vocab import ENCODERS

__all__ = [
    "ENCODERS",
    "FP16_WARN",
    "FP32_TOLERANCE",
    "DatasetMissingError",
    "DatasetUnusableError",
    "FeatureBundleError",
    "ParityResult",
    "compare_outputs",
    "measure_parity",
    "open_bundle_dataset",
    "parity_result",
    "prepare_split",
    "require_encoders",
    "resolve_dataset",
]

FP32_TOLERANCE = 1e-4
FP16_WARN = 1e-2


@dataclass(frozen=True)
class ParityResult:
    max_abs: float
    cosine: float
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {"max_abs": self.max_abs, "cosine": self.cosine, "samples": self.samples, "reference": "pytorch"}


def compare_outputs(ref: list[np.ndarray], got: list[np.ndarray]) -> ParityResult:
    """Rows are output vectors (B, F); max |ref - got| over all, mean cosine over the rows
    (:func:`edge_mmer.convert.compare.compare_arrays`)."""
    result = compare_arrays(ref, got, "parity")
    return ParityResult(max_abs=result.max_abs, cosine=result.cosine, samples=result.samples)


def parity_result(comparisons: Mapping[str, OutputComparison]) -> ParityResult:
    """One network's parity from its per-output comparisons: the largest max-abs of any output; the
    first output's cosine and row count."""
    first = next(iter(comparisons.values()))
    return ParityResult(max_abs=max(c.max_abs for c in comparisons.values()), cosine=first.cosine,
                        samples=first.samples)


def _step_through(reference: Runner, runner: Runner, sequences: list[np.ndarray]) -> tuple[TapRunner, TapRunner]:
    """Both step graphs over every (L, D) sequence, each from a zero state, each carrying its own."""
    taps = TapRunner(reference, keep_outputs=True), TapRunner(runner, keep_outputs=True)
    steppers = [StepLSTM(tap) for tap in taps]
    for tap in taps:
        tap.activate()
    for seq in sequences:
        for stepper in steppers:
            stepper.reset_states()
            for x_t in seq:
                stepper.step(x_t)
    return taps


def measure_parity(name: str, reference: Runner, runner: Runner, inputs: NetworkInputs) -> ParityResult:
    """``runner`` (the ONNX artifact) against ``reference`` (the torch network) on the real inputs
    for ``name`` (see the module docstring); activates both and leaves them active."""
    if name in ENCODERS:
        reference.activate()
        runner.activate()
        feeds = inputs.feeds.get(name, [])
        ref_runs = [reference.infer(feed) for feed in feeds]
        got_runs = [runner.infer(feed) for feed in feeds]
    else:
        ref_tap, got_tap = _step_through(reference, runner, inputs.sequences(name))
        ref_runs, got_runs = ref_tap.results, got_tap.results
    if not ref_runs:
        raise DatasetUnusableError(f"parity: no real samples for {name} (no face found in the sampled utterances? "
                                   "pass more with --samples)")
    return parity_result(compare(ref_runs, got_runs))
