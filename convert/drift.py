"""INT8 drift: how far the INT8 networks move the deployed decision away from FP32 ONNX, measured
on the code the device runs.

The FP32 ONNX artifacts run behind :class:`~edge_mmer.runtime.runners.onnxruntime_runner.OnnxRuntimeRunner`
(ONNX Runtime's CPU provider) in :class:`~edge_mmer.networks.Networks`, and every prepared test
utterance is decided by :func:`edge_mmer.networks.decide_utterance`, the runtime's one decision path
(encoders -> context steps -> masks -> fusion step -> SVMs -> fuzzy integral; the recurrent state
reset at each session start, carried from one utterance to the next). Then the same for each INT8
flavour, its quantized networks substituted and the LSTM-only networks kept FP32.

- Per network (``network``): taps (:class:`~edge_mmer.calibration.tap.TapRunner`) keep what each
  quantized network's FP32 original was fed in the FP32 pass and what it gave; the INT8 network is
  run on those same feeds and its first output compared with FP32's
  (:func:`edge_mmer.convert.compare.compare`): cosine and max abs over ``runs`` feeds.
- End to end (``end_to_end``): top-1 agreement of the INT8 decisions with the FP32 ones, and both
  accuracies against the labels.

What the figures must reach to deploy (:class:`DriftThresholds`) is applied by
:mod:`edge_mmer.convert.int8`, which records them in the bundle.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edge_mmer.bundle import Bundle
from edge_mmer.calibration.tap import TapRunner
from edge_mmer.convert.compare import compare
from edge_mmer.convert.runners import onnx_runner
from edge_mmer.decision import DecisionHead
from edge_mmer.networks import Networks, decide_utterance
from edge_mmer.runner import Runner
from edge_mmer.vocab import ArtifactKind

log = logging.getLogger(__name__)

__all__ = ["DecisionRun", "DriftThresholds", "FlavourDrift", "LabelledUtterance", "decide_sessions", "measure_drift"]


@dataclass(frozen=True)
class DriftThresholds:
    """What an INT8 artifact's drift must reach to be marked deployable."""

    min_agreement: float = 0.99
    max_accuracy_drop: float = 0.01
    min_cosine: float = 0.99


class LabelledUtterance(Protocol):
    """One prepared test utterance (:class:`edge_mmer.datasets.frontend.UtteranceInput`)."""

    @property
    def label(self) -> int: ...

    @property
    def mel(self) -> np.ndarray: ...

    @property
    def faces(self) -> np.ndarray | None: ...


@dataclass
class DecisionRun:
    """The decision path over prepared sessions: the decision per utterance and its label."""

    predictions: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return float(np.mean(np.asarray(self.predictions) == np.asarray(self.labels))) if self.labels else float("nan")

    def agreement(self, other: DecisionRun) -> float:
        """The share of utterances decided as ``other`` decided them."""
        return float(np.mean(np.asarray(self.predictions) == np.asarray(other.predictions)))


@dataclass(frozen=True)
class FlavourDrift:
    """One INT8 flavour's drift: per quantized network, and end to end (recorded as is)."""

    networks: dict[str, dict[str, Any]]  # network -> cosine, max_abs, runs, reference
    end_to_end: dict[str, Any]  # utterances, split, agreement, accuracies, which networks ran INT8 / FP32

    @property
    def agreement(self) -> float:
        return float(self.end_to_end["agreement"])

    @property
    def accuracy_drop(self) -> float:
        return float(self.end_to_end["accuracy_fp32"] - self.end_to_end["accuracy_int8"])


def decide_sessions(networks: Networks, head: DecisionHead, bundle: Bundle,
                    prepared: Sequence[Sequence[LabelledUtterance]]) -> DecisionRun:
    """Every utterance through :func:`~edge_mmer.networks.decide_utterance`, each session from a
    zero state; an utterance without a face is decided on the speech channel alone."""
    run = DecisionRun()
    networks.activate()
    for session in prepared:
        networks.reset_states()
        for utt in session:
            crops = None if utt.faces is None else list(utt.faces)
            run.predictions.append(decide_utterance(networks, head, bundle.config.face, utt.mel, crops).label_index)
            run.labels.append(int(utt.label))
    return run


def _network_drift(tap: TapRunner, quantized: Runner) -> dict[str, Any]:
    """The INT8 network on the FP32 network's recorded feeds, first output against FP32's."""
    if not tap.feeds:
        return {"cosine": float("nan"), "max_abs": float("nan"), "runs": 0, "reference": ArtifactKind.ONNX_FP32}
    name = tap.outputs[0].name
    with quantized:
        got = [quantized.infer(feed) for feed in tap.feeds]
    result = compare(tap.results, got, [name])[name]
    return {"cosine": result.cosine, "max_abs": result.max_abs, "runs": len(got), "reference": ArtifactKind.ONNX_FP32}


def measure_drift(bundle: Bundle, fp32: Mapping[str, bytes], int8: Mapping[str, Mapping[str, bytes]],
                  prepared: Sequence[Sequence[LabelledUtterance]], head: DecisionHead,
                  ) -> tuple[DecisionRun, dict[str, FlavourDrift]]:
    """The FP32 decisions and each flavour's drift. ``fp32``: every network's FP32 ONNX model;
    ``int8``: flavour -> network -> its INT8 model (the networks left out run FP32)."""
    taps = {name: TapRunner(onnx_runner(bundle, name, model), keep_outputs=True) for name, model in fp32.items()}
    fp32_networks = Networks(dict(taps))
    ref = decide_sessions(fp32_networks, head, bundle, prepared)
    fp32_networks.deactivate()
    log.info("INT8 drift: %d test utterances, FP32 ONNX accuracy %.4f", len(ref.labels), ref.accuracy)
    out: dict[str, FlavourDrift] = {}
    for flavour, models in int8.items():
        per_net = {name: _network_drift(taps[name], onnx_runner(bundle, name, model)) for name, model in models.items()}
        runners: dict[str, Runner] = {name: onnx_runner(bundle, name, models.get(name, model))
                                      for name, model in fp32.items()}
        networks = Networks(runners)
        run = decide_sessions(networks, head, bundle, prepared)
        networks.deactivate()
        e2e = {"utterances": len(ref.labels), "split": "test", "agreement": run.agreement(ref),
               "accuracy_fp32": ref.accuracy, "accuracy_int8": run.accuracy,
               "accuracy_delta": run.accuracy - ref.accuracy,
               "int8_networks": list(models), "fp32_networks": [n for n in bundle.network_specs if n not in models]}
        out[flavour] = FlavourDrift(per_net, e2e)
    return ref, out
